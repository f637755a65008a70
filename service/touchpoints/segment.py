"""Segment HTTP Tracking API compatibility: /v1/batch, /v1/track, /v1/identify, /v1/page, ...

The write key is an API key with the "kiosk" scope, sent as the basic-auth user name (or in
the body's `writeKey`). Answers are Segment's: {"success": true}, errors with code/message.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from service.access.credentials import api_key_from
from service.access.keys import Principal
from service.body_limit import read_limited_body
from service.deps import RuntimeDep
from service.errors import ServiceError, database_unavailable, unavailable_response
from service.identity.service import link_shoppers
from service.runtime import Runtime
from service.touchpoints.service import Ingestor, IngestResult

router = APIRouter(prefix="/v1", tags=["segment"])


class SegmentAck(BaseModel):
    success: Literal[True]


class SegmentErrorOut(BaseModel):
    """Segment's error shape (not the service's ErrorBody): what its SDKs expect."""

    success: Literal[False]
    code: str
    message: str


_SEGMENT_ERRORS = {400: "Bad request", 401: "Unknown write key", 403: "Key lacks kiosk scope"}
# Every Segment route: the write key as basic-auth user name, or any of the service's key
# headers (api_key_from reads them all); the scheme itself is added in service.openapi.
SEGMENT_ROUTE: dict[str, Any] = {
    "response_class": JSONResponse,
    "responses": {
        200: {"model": SegmentAck, "description": "Stored (or ignored: page, screen, group)"},
        **{
            c: {"model": SegmentErrorOut, "description": d}
            for c, d in {
                **_SEGMENT_ERRORS,
                413: "Body too large",
                429: "Rate limited",
                503: "Database unavailable: retry after Retry-After seconds",
            }.items()
        },
    },
    "openapi_extra": {
        "security": [{"SegmentWriteKey": []}, {"HTTPBearer": []}, {"APIKeyHeader": []}],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
    },
}

# Segment's context.channel values, mapped onto ours; anything else falls back to "web".
_SEGMENT_CHANNELS = {
    "browser": "web",
    "mobile": "app",
    "web": "web",
    "app": "app",
    "kiosk": "kiosk",
    "store_staff": "store_staff",
    "call_centre": "call_centre",
}
_ENVELOPE_EXTRAS = ("session_id", "store_id", "kiosk_id")
# Below this, sender and server clocks agree well enough; leave timestamps untouched.
CLOCK_SKEW_MIN = timedelta(seconds=5)


class _SegmentError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> JSONResponse:
        body = {"success": False, "code": self.code, "message": self.message}
        return JSONResponse(body, status_code=self.status)


async def _read_json(request: Request, limit: int) -> dict[str, Any]:
    data = await read_limited_body(request, limit)
    if request.headers.get("content-encoding", "").lower() == "gzip":
        try:
            # Bounded read: a small gzip bomb must not expand past the body limit.
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
                data = gz.read(limit + 1)
        except (OSError, EOFError) as exc:
            raise _SegmentError(400, "invalid_request", "body is not valid gzip") from exc
    if len(data) > limit:
        raise _SegmentError(413, "payload_too_large", f"body exceeds {limit} bytes")
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # nested too deep too
        raise _SegmentError(400, "invalid_request", "body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise _SegmentError(400, "invalid_request", "body must be a JSON object")
    return body


async def _authenticate(rt: Runtime, request: Request, body: dict[str, Any]) -> Principal:
    raw = api_key_from(request.headers, allow_basic=True, fallback=body.get("writeKey"))
    client = rt.auth.client_of(request.client.host if request.client else None, request.headers)
    try:
        principal = await run_in_threadpool(rt.auth.authenticate, raw, "kiosk", client)
    except ServiceError as exc:
        raise _SegmentError(exc.status_code, exc.code, exc.message) from exc
    if principal.is_session:  # identify/alias link any ids: server-to-server keys only
        raise _SegmentError(403, "forbidden", "Segment routes take a kiosk key, not a session")
    return principal


def _message_id(msg: dict[str, Any]) -> str:
    """Segment's messageId, or a stable hash of the message so client retries still dedupe."""
    mid = msg.get("messageId")
    if isinstance(mid, str) and mid:
        return mid
    canonical = json.dumps(
        {k: v for k, v in msg.items() if k != "sentAt"}, sort_keys=True, default=str
    )
    return "seg-" + hashlib.sha256(canonical.encode()).hexdigest()[:40]


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def clock_skew(sent_at: Any, now: datetime) -> timedelta | None:
    """How far the sender's clock is behind ours, from Segment's `sentAt` (None if negligible).

    Segment corrects timestamps the same way: timestamp + (receivedAt - sentAt). A kiosk
    whose clock runs a day fast thus still lands at the right time instead of being rejected.
    """
    sent = _parse_time(sent_at)
    if sent is None:
        return None
    skew = now - sent
    return skew if abs(skew) > CLOCK_SKEW_MIN else None


def track_to_event(msg: dict[str, Any], skew: timedelta | None = None) -> dict[str, Any]:
    """A Segment track message as an ingest() event (same validation as POST /v1/events)."""
    props = dict(msg.get("properties") or {}) if isinstance(msg.get("properties"), dict) else {}
    ctx = dict(msg.get("context") or {}) if isinstance(msg.get("context"), dict) else {}
    timestamp = msg.get("timestamp") or msg.get("originalTimestamp")
    if skew is not None and (ts := _parse_time(timestamp)) is not None:
        with contextlib.suppress(OverflowError):  # past year 9999: ingest rejects it as it is
            timestamp = (ts + skew).isoformat()
            ctx["clock_skew_corrected_s"] = round(skew.total_seconds(), 3)
    event: dict[str, Any] = {
        "message_id": _message_id(msg),
        "event": msg.get("event"),
        "anonymous_id": msg.get("anonymousId"),
        "user_id": msg.get("userId"),
        "timestamp": timestamp,
        "properties": props,
        "context": ctx,
    }
    # Segment has no top-level slots for these: take them from properties, then context.
    for key in _ENVELOPE_EXTRAS:
        camel = key.split("_")[0] + key.split("_")[1].title()
        value = props.pop(key, None) or ctx.get(key) or ctx.get(camel)
        if value is not None:
            event[key] = value
    channel = props.pop("channel", None) or ctx.get("channel")
    if isinstance(channel, str):
        event["channel"] = _SEGMENT_CHANNELS.get(channel.lower(), channel)
    return {k: v for k, v in event.items() if v is not None}


def _link_id(msg: dict[str, Any], key: str) -> str:
    """msg[key] as a shopper id, or "" when it could not be one (like ingest's `Id`)."""
    value = msg.get(key)
    value = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
    return value if 0 < len(value) <= 128 and "\x00" not in value else ""


def _apply(
    session: Session,
    ingest: Ingestor,
    messages: list[Any],
    sent_at: Any = None,
    key_id: int | None = None,
) -> IngestResult:
    """Track messages go through ingest(); identify/alias link ids; page/screen/group no-op."""
    tracks: list[Any] = []
    links: set[tuple[str, str]] = set()
    now = datetime.now(UTC)
    batch_skew = clock_skew(sent_at, now)
    for msg in messages:
        kind = msg.get("type", "track") if isinstance(msg, dict) else "track"
        if kind == "track" and isinstance(msg, dict):
            skew = clock_skew(msg["sentAt"], now) if "sentAt" in msg else batch_skew
            tracks.append(track_to_event(msg, skew))
        elif kind == "track":
            tracks.append(msg)  # not an object: ingest() reports it as malformed
        elif kind == "identify" and _link_id(msg, "userId") and _link_id(msg, "anonymousId"):
            links.add((_link_id(msg, "anonymousId"), _link_id(msg, "userId")))
        elif kind == "alias" and _link_id(msg, "userId") and _link_id(msg, "previousId"):
            links.add((_link_id(msg, "previousId"), _link_id(msg, "userId")))
    result = ingest(session, tracks, source="segment", now=now, key_id=key_id)
    if links:
        link_shoppers(session, links, source="segment")
    # Rejected messages are counted, logged at WARNING and listed for admins by the
    # Ingestor's RejectionRecorder (service.touchpoints.rejections), never dropped silently.
    return result


async def _handle(rt: Runtime, request: Request, single_type: str | None) -> JSONResponse:
    try:
        body = await _read_json(request, rt.settings.max_body_bytes)
        principal = await _authenticate(rt, request, body)
        if single_type is None:
            batch = body.get("batch")
            if not isinstance(batch, list):
                raise _SegmentError(400, "invalid_request", "`batch` must be a list")
            limit = rt.settings.event_max_batch
            if len(batch) > limit:
                raise _SegmentError(
                    413, "payload_too_large", f"batch has {len(batch)} messages; at most {limit}"
                )
            messages = batch
        else:
            messages = [{**body, "type": single_type}]
    except _SegmentError as exc:
        return exc.response()

    def work() -> None:
        with rt.sessions.begin() as session:
            _apply(session, rt.ingest, messages, body.get("sentAt"), principal.key_id)

    await run_in_threadpool(work)
    return JSONResponse({"success": True})


def _unavailable() -> JSONResponse:
    """503 + Retry-After in both shapes: Segment's (success/code/message, its SDKs retry any
    5xx) and the service's {"error": ...}."""
    message = "the database is unavailable; retry later"
    return unavailable_response(success=False, code="database_unavailable", message=message)


async def _handle_or_unavailable(
    rt: Runtime, request: Request, single_type: str | None
) -> JSONResponse:
    # Authentication (in a thread) and the ingest both reach the database: an outage in
    # either is a 503 the SDK retries, never a 500 (the batch is then stored on the retry).
    try:
        return await _handle(rt, request, single_type)
    except Exception as exc:
        if database_unavailable(exc):
            return _unavailable()
        raise


@router.post("/batch", **SEGMENT_ROUTE)
async def segment_batch(request: Request, rt: RuntimeDep) -> JSONResponse:
    """Segment `POST /v1/batch` ({"batch": [messages], "sentAt", ...})."""
    return await _handle_or_unavailable(rt, request, None)


@router.post("/track", **SEGMENT_ROUTE)
async def segment_track(request: Request, rt: RuntimeDep) -> JSONResponse:
    return await _handle_or_unavailable(rt, request, "track")


@router.post("/identify", **SEGMENT_ROUTE)
async def segment_identify(request: Request, rt: RuntimeDep) -> JSONResponse:
    """Links anonymousId to userId, so both resolve to one shopper."""
    return await _handle_or_unavailable(rt, request, "identify")


@router.post("/alias", **SEGMENT_ROUTE)
async def segment_alias(request: Request, rt: RuntimeDep) -> JSONResponse:
    return await _handle_or_unavailable(rt, request, "alias")


@router.post("/page", **SEGMENT_ROUTE)
async def segment_page(request: Request, rt: RuntimeDep) -> JSONResponse:
    """Accepted for SDK compatibility; page views are not touchpoints here."""
    return await _handle_or_unavailable(rt, request, "page")


@router.post("/screen", **SEGMENT_ROUTE)
async def segment_screen(request: Request, rt: RuntimeDep) -> JSONResponse:
    return await _handle_or_unavailable(rt, request, "screen")


@router.post("/group", **SEGMENT_ROUTE)
async def segment_group(request: Request, rt: RuntimeDep) -> JSONResponse:
    return await _handle_or_unavailable(rt, request, "group")
