"""ingest(): the one path every touchpoint takes (API, Segment, stream sink), idempotent."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

from pydantic import ValidationError
from sqlalchemy.orm import Session

from service.touchpoints.repository import insert_new
from service.touchpoints.schemas import (
    EVENT_MODELS,
    EVENT_NAMES,
    MEASUREMENT_KEYS,
    NESTED_PROPERTIES,
    Properties,
    allowed_keys,
)
from service.touchpoints.scrub import scrub, warnings_for

log = logging.getLogger(__name__)

DEFAULT_MAX_FUTURE_SKEW_S = 300.0
# Anything before this is a broken client clock, not history.
EARLIEST_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC)
# Serialized size caps: properties/context are metadata, never frames or meshes.
MAX_PROPERTIES_BYTES = 16 * 1024
MAX_CONTEXT_BYTES = 8 * 1024

Status = Literal["accepted", "duplicate", "rejected"]
# Runs in the ingest transaction on the rows really inserted (never on duplicates), e.g. the
# daily rollups and identity links; the list is built when the app is built (service.wiring).
AfterInsertHook = Callable[[Session, Sequence[Mapping[str, Any]]], None]


@dataclass(slots=True)
class EventResult:
    index: int
    message_id: str | None
    status: Status
    error: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class IngestResult:
    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0
    results: list[EventResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "inserted": self.inserted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "results": [
                {k: v for k, v in asdict(r).items() if v or k in ("index", "status")}
                for r in self.results
            ],
        }


class _Reject(Exception):
    def __init__(self, code: str, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.error = {"code": code, "message": message}
        if detail is not None:
            self.error["detail"] = detail


def _allow_listed(props: dict[str, Any], model: type[Properties]) -> list[str]:
    """Drop (in place) the keys the event's schema does not declare; returns their paths."""
    allowed = allowed_keys(model)
    dropped = [f"properties.{k}" for k in props if k not in allowed]
    for key in [k for k in props if k not in allowed]:
        del props[key]
    for key, line_model in NESTED_PROPERTIES.items():
        lines = props.get(key)
        if key not in allowed or not isinstance(lines, list):
            continue
        line_keys = allowed_keys(line_model)
        for i, line in enumerate(lines):
            if isinstance(line, dict) and not line_keys.issuperset(line):
                dropped += [f"properties.{key}[{i}].{k}" for k in line if k not in line_keys]
                lines[i] = {k: v for k, v in line.items() if k in line_keys}
    return dropped


def _has_nul(obj: Any) -> bool:
    if isinstance(obj, str):
        return "\x00" in obj
    if isinstance(obj, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in obj.items())
    if isinstance(obj, list | tuple):
        return any(_has_nul(v) for v in obj)
    return False


def _check_json(obj: Any, what: str, limit: int) -> None:
    """Reject what one backend would refuse for the whole batch (PostgreSQL jsonb: NaN, NUL)."""
    try:
        text = json.dumps(obj, default=str, separators=(",", ":"), allow_nan=False)
    except ValueError:
        raise _Reject(
            "invalid", f"{what} contain NaN or Infinity, which JSON does not allow"
        ) from None
    # The escaped form is a cheap pre-check; the walk rules out a literal backslash-u0000.
    if "\\u0000" in text and _has_nul(obj):
        raise _Reject("invalid", f"{what} contain a NUL character")
    if len(text) > limit:
        raise _Reject("too_large", f"{what} exceed {limit} bytes")


def _prepare(
    raw: Any, *, source: str, now: datetime, max_future: timedelta
) -> tuple[dict[str, Any], list[str]]:
    """Validate one event and turn it into an `events` row; raises _Reject with the reason."""
    if not isinstance(raw, Mapping):
        raise _Reject("malformed", f"an event must be a JSON object, not {type(raw).__name__}")
    name = raw.get("event")
    if not isinstance(name, str) or not name:
        raise _Reject("malformed", "missing `event` name")
    model = EVENT_MODELS.get(name)
    if model is None:
        raise _Reject(
            "unknown_event", f"unknown event {name!r}", detail={"known": list(EVENT_NAMES)}
        )

    # Face data and blobs go before validation, so they never reach a log or an error; then
    # the keys the event's schema does not declare (the event itself is kept).
    raw = dict(raw)
    scrubbed: dict[str, list[str]] = {}
    for key in ("properties", "context"):
        if isinstance(raw.get(key), Mapping):
            raw[key] = scrub(dict(raw[key]), key, scrubbed)
    warnings = warnings_for(scrubbed)
    props_schema = model.model_fields["properties"].annotation
    if isinstance(raw.get("properties"), dict) and isinstance(props_schema, type):
        unknown = _allow_listed(raw["properties"], cast(type[Properties], props_schema))
        if unknown:
            warnings.append(f"removed properties not in the {name} schema: {', '.join(unknown)}")
    try:
        ev = model.model_validate(raw)
    except ValidationError as exc:
        errors = [
            {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise _Reject("invalid", "event failed validation", detail=errors) from None

    ts = ev.timestamp or now
    if ts > now + max_future:
        raise _Reject(
            "future_timestamp",
            f"timestamp {ts.isoformat()} is more than {max_future.total_seconds():.0f} s ahead"
            " of the server clock",
        )
    if ts < EARLIEST_TIMESTAMP:
        raise _Reject("invalid_timestamp", f"timestamp {ts.isoformat()} is before 2000")

    # Every EVENT_MODELS entry narrows the envelope's open `properties` to its Properties model.
    props_model = cast(Properties, ev.properties)
    props = props_model.model_dump(mode="json", exclude_none=True)
    if not props_model.consent:
        removed = sorted(MEASUREMENT_KEYS & props.keys())
        for key in removed:
            del props[key]
        if removed:
            warnings.append(f"removed face measurements without consent: {', '.join(removed)}")
    context = ev.context
    _check_json(props, "properties", MAX_PROPERTIES_BYTES)
    _check_json(context, "context", MAX_CONTEXT_BYTES)

    sku = props_model.sku
    products = getattr(props_model, "products", None)
    if sku is None and products and len(products) == 1:
        sku = products[0].sku
    anonymous_id = ev.anonymous_id or ev.user_id
    row = {
        "message_id": ev.message_id,
        "event": name,
        "anonymous_id": anonymous_id,
        "user_id": ev.user_id,
        "shopper_id": ev.user_id or anonymous_id,
        "session_id": ev.session_id,
        "channel": ev.channel,
        "store_id": ev.store_id,
        "kiosk_id": ev.kiosk_id,
        "sku": sku,
        "variant": props_model.variant,
        "shade": props_model.shade,
        "dwell_ms": props_model.dwell_ms,
        "price": props_model.price,
        "currency": props_model.currency,
        "timestamp": ts,
        "received_at": now,
        "source": source,
        "properties": props,
        "context": context,
    }
    for key, value in row.items():
        if isinstance(value, str) and "\x00" in value:
            raise _Reject("invalid", f"{key} contains a NUL character")
    return row, warnings


# Never taken from a client's event: the server sets key_id from the caller.
CLIENT_KEY_FIELDS = frozenset({"key_id", "keyId", "_key_id"})


def _check_shopper(row: Mapping[str, Any], shopper_id: str) -> None:
    if row["anonymous_id"] != shopper_id or row["user_id"] not in (None, shopper_id):
        raise _Reject(
            "forbidden_shopper",
            "this session token may only send events of its own shopper"
            f" (anonymous_id {shopper_id!r}, no other user_id)",
        )


def ingest(
    session: Session,
    events: Sequence[Any],
    *,
    source: str,
    hooks: Sequence[AfterInsertHook] = (),
    max_future_skew_s: float = DEFAULT_MAX_FUTURE_SKEW_S,
    now: datetime | None = None,
    key_id: int | None = None,
    shopper_id: str | None = None,
) -> IngestResult:
    """Validate each event on its own, store the valid ones once, report every one.

    key_id: the API key storing them (the caller's, never the event's: a `key_id` sent in an
    event is dropped), kept in `events.key_id`. shopper_id: a session token's shopper; events
    of any other shopper are rejected ("forbidden_shopper"), the others stored.

    Idempotent on message_id (INSERT .. ON CONFLICT DO NOTHING): replays and repeats within
    the batch come back as "duplicate"; an invalid event never costs its siblings. The caller
    owns the transaction (the request session commits; the sink commits per batch).
    """
    now = now or datetime.now(UTC)
    max_future = timedelta(seconds=max_future_skew_s)
    result = IngestResult()
    rows: list[dict[str, Any]] = []
    pending: list[EventResult] = []  # accepted so far; duplicates decided by the insert
    first_index: dict[str, int] = {}
    for index, raw in enumerate(events):
        mid = raw.get("message_id", raw.get("messageId")) if isinstance(raw, Mapping) else None
        mid = mid if isinstance(mid, str) else None
        try:
            if isinstance(raw, Mapping) and not CLIENT_KEY_FIELDS.isdisjoint(raw):
                raw = {k: v for k, v in raw.items() if k not in CLIENT_KEY_FIELDS}
            row, warnings = _prepare(raw, source=source, now=now, max_future=max_future)
            if shopper_id is not None:
                _check_shopper(row, shopper_id)
            row["key_id"] = key_id
        except _Reject as rej:
            result.results.append(EventResult(index, mid, "rejected", rej.error))
            result.rejected += 1
            continue
        mid = row["message_id"]
        if mid in first_index:
            result.results.append(
                EventResult(
                    index,
                    mid,
                    "duplicate",
                    {
                        "code": "duplicate_in_batch",
                        "message": f"same message_id as event {first_index[mid]}",
                    },
                )
            )
            result.duplicates += 1
            continue
        first_index[mid] = index
        rows.append(row)
        er = EventResult(index, mid, "accepted", None, warnings)
        result.results.append(er)
        pending.append(er)

    if rows:
        inserted = insert_new(session, rows)
        new_rows = [r for r in rows if r["message_id"] in inserted]
        for hook in hooks:
            hook(session, new_rows)
        for er in pending:
            if er.message_id in inserted:
                result.inserted += 1
            else:
                er.status = "duplicate"
                er.error = {"code": "duplicate", "message": "message_id already stored"}
                result.duplicates += 1
    return result


# Sees each ingest call's rejected events (session, source, the events, the result): counts,
# logs and keeps them (service.touchpoints.rejections.RejectionRecorder, set in service.wiring).
RejectedHook = Callable[[Session, str, Sequence[Any], "IngestResult"], None]


@dataclass(frozen=True)
class Ingestor:
    """ingest() with the app's after-insert hooks and limits bound: what features call."""

    hooks: tuple[AfterInsertHook, ...] = ()
    max_future_skew_s: float = DEFAULT_MAX_FUTURE_SKEW_S
    on_rejected: RejectedHook | None = None

    def __call__(
        self,
        session: Session,
        events: Sequence[Any],
        *,
        source: str,
        now: datetime | None = None,
        key_id: int | None = None,
        shopper_id: str | None = None,
    ) -> IngestResult:
        result = ingest(
            session,
            events,
            source=source,
            hooks=self.hooks,
            max_future_skew_s=self.max_future_skew_s,
            now=now,
            key_id=key_id,
            shopper_id=shopper_id,
        )
        if result.rejected and self.on_rejected is not None:
            self.on_rejected(session, source, events, result)
        return result


def log_rejections(result: IngestResult, total: int, who: str, level: int = logging.INFO) -> None:
    """One log line for a batch with rejected events: how many, and the first few reasons."""
    if result.rejected:
        reasons = [r.error for r in result.results if r.status == "rejected"][:3]
        log.log(level, "%s: %d of %d events rejected: %s", who, result.rejected, total, reasons)
