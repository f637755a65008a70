"""The one vocabulary of touchpoints: every event name, and one typed builder per event."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypedDict, Unpack

from service.touchpoints.names import EventName
from service.touchpoints.schemas import PROPERTIES_BY_EVENT

__all__ = ["EventName", "Who", "build"]


OfferAction = Literal["accepted", "rejected"]


@dataclass(frozen=True, slots=True)
class Who:
    """Who and where an event is about: the envelope's ids."""

    anonymous_id: str
    channel: str = "web"
    session_id: str | None = None
    user_id: str | None = None
    store_id: str | None = None
    kiosk_id: str | None = None


class EventOptions(TypedDict, total=False):
    """What every builder passes on to build(): the envelope's optional fields."""

    message_id: str | None
    timestamp: datetime | None
    context: Mapping[str, object] | None


def build(
    name: EventName,
    who: Who,
    properties: Mapping[str, object],
    *,
    message_id: str | None = None,
    timestamp: datetime | None = None,
    context: Mapping[str, object] | None = None,
) -> dict[str, Any]:
    """A ready-to-ingest event; its properties are validated here, where the event is made.

    Raises pydantic.ValidationError for properties the event's schema refuses: our own
    events must never be rejected later by ingest.
    """
    props = {k: v for k, v in properties.items() if v is not None}
    PROPERTIES_BY_EVENT[name].model_validate(props)
    event: dict[str, Any] = {
        "message_id": message_id or uuid.uuid4().hex,
        "event": str(name),
        "anonymous_id": who.anonymous_id,
        "channel": who.channel,
        "timestamp": (timestamp or datetime.now(UTC)).isoformat(),
        "properties": props,
    }
    for key in ("session_id", "user_id", "store_id", "kiosk_id"):
        value = getattr(who, key)
        if value:
            event[key] = value
    if context:
        event["context"] = dict(context)
    return event


def try_on_started(
    who: Who, product_type: str, extra: Mapping[str, object], **kw: Unpack[EventOptions]
) -> dict[str, Any]:
    return build(EventName.TRY_ON_STARTED, who, {"product_type": product_type, **extra}, **kw)


def frame_applied(
    who: Who,
    sku: str,
    variant: str | None,
    extra: Mapping[str, object] | None = None,
    **kw: Unpack[EventOptions],
) -> dict[str, Any]:
    props = {"sku": sku, "variant": variant, **(extra or {})}
    return build(EventName.FRAME_APPLIED, who, props, **kw)


def shade_applied(
    who: Who,
    shade: str,
    intensity: float | None,
    finish: str | None,
    extra: Mapping[str, object] | None = None,
    **kw: Unpack[EventOptions],
) -> dict[str, Any]:
    props = {"shade": shade, "intensity": intensity, "finish": finish, **(extra or {})}
    return build(EventName.SHADE_APPLIED, who, props, **kw)


def try_on_dwell(
    who: Who, dwell_ms: int, props: Mapping[str, object], **kw: Unpack[EventOptions]
) -> dict[str, Any]:
    return build(EventName.TRY_ON_DWELL, who, {**props, "dwell_ms": dwell_ms}, **kw)


def snapshot_captured(
    who: Who, props: Mapping[str, object], **kw: Unpack[EventOptions]
) -> dict[str, Any]:
    return build(EventName.SNAPSHOT_CAPTURED, who, props, **kw)


def offer_shown(
    who: Who, offer_id: str, sku: str, rank: int, coupon: str | None, **kw: Unpack[EventOptions]
) -> dict[str, Any]:
    props = {"offer_id": offer_id, "sku": sku, "rank": rank, "coupon": coupon}
    return build(EventName.OFFER_SHOWN, who, props, **kw)


def offer_feedback(
    who: Who,
    action: OfferAction,
    offer_id: str,
    sku: str,
    coupon: str | None,
    **kw: Unpack[EventOptions],
) -> dict[str, Any]:
    name = EventName.OFFER_ACCEPTED if action == "accepted" else EventName.OFFER_REJECTED
    return build(name, who, {"offer_id": offer_id, "sku": sku, "coupon": coupon}, **kw)
