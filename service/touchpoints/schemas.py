"""One pydantic model (and JSON Schema) per touchpoint event, plus the shared envelope."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from service.touchpoints.names import EventName

Channel = Literal["web", "kiosk", "app", "store_staff", "call_centre"]
Id = Annotated[str, Field(min_length=1, max_length=128)]
ShortStr = Annotated[str, Field(min_length=1, max_length=64)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


def _money_json(value: Decimal) -> int | float:
    """A JSON number, as sent: 119 stays 119, 119.5 stays 119.5 (never the string "119")."""
    return int(value) if value == value.to_integral_value() else float(value)


# Validated as a Decimal (exact bounds and cents); stored in properties as a JSON number.
Money = Annotated[
    Decimal,
    Field(ge=0, max_digits=12, decimal_places=2),
    PlainSerializer(_money_json, return_type=int | float, when_used="json"),
]
# A JSON scalar kept with its own type (a number stays a number, "4" stays a string): the
# allow-listed keys whose values clients send in more than one form (analytics reads them
# leniently, e.g. analytics.definitions.skin_tone_band).
Scalar = StrictStr | StrictInt | StrictFloat | StrictBool

# Face measurements (vision.measure.FaceMeasurements fields, skin tone): kept only with consent.
MEASUREMENT_KEYS = frozenset(
    {
        "measurements",
        "face_measurements",
        "pd_mm",
        "pd_uncertainty_mm",
        "face_width_mm",
        "face_width_uncertainty_mm",
        "recommended_frame_width_mm",
        "size_band",
        "skin_tone",
        "monk_index",
    }
)
# A raw face mesh is never stored, consent or not: it identifies the face.
LANDMARK_KEYS = frozenset(
    {"landmarks", "face_landmarks", "landmark", "mesh", "face_mesh", "vertices", "keypoints"}
)


# Segment message keys that are delivery metadata, not touchpoint data.
SEGMENT_META_KEYS = frozenset(
    {
        "integrations",
        "sentAt",
        "receivedAt",
        "originalTimestamp",
        "writeKey",
        "version",
        "received_at",
        "sent_at",
    }
)


def _normalize_channel(value: Any) -> Any:
    if isinstance(value, str):
        v = value.strip().lower().replace("-", "_").replace(" ", "_")
        return {"call_center": "call_centre", "store": "store_staff", "staff": "store_staff"}.get(
            v, v
        )
    return value


class Properties(BaseModel):
    """Fields every event may carry: an allow-list. Each event's model adds its own keys;
    ingest removes any other key before storage (with a warning), never the event."""

    model_config = ConfigDict(extra="forbid")

    sku: ShortStr | None = None
    variant: ShortStr | None = None
    shade: ShortStr | None = None
    dwell_ms: Annotated[int, Field(ge=0, le=24 * 3600 * 1000)] | None = None
    price: Money | None = None
    currency: Currency | None = None
    consent: bool = Field(
        default=False, description="Face measurements are kept only when this is true."
    )
    # Product and origin descriptors (the demo page sends source "photo" and a category).
    name: Scalar | None = None
    category: Scalar | None = None
    source: Scalar | None = None
    # Face measurements (MEASUREMENT_KEYS): removed unless consent is true.
    pd_mm: Scalar | None = None
    pd_uncertainty_mm: Scalar | None = None
    face_width_mm: Scalar | None = None
    face_width_uncertainty_mm: Scalar | None = None
    recommended_frame_width_mm: Scalar | None = None
    size_band: Scalar | None = None
    skin_tone: Scalar | None = None
    monk_index: Scalar | None = None
    measurements: dict[str, Scalar | None] | None = None
    face_measurements: dict[str, Scalar | None] | None = None
    # A skin-tone band chosen by the shopper (analytics' shade report groups by it).
    skin_tone_band: Scalar | None = None

    @model_validator(mode="after")
    def _shade_is_its_sku(self) -> Properties:
        # A lipstick is sold by its shade: a shade's sku is its id (assets/shades), so an event
        # naming only the shade gets that sku, and counts in the funnel, orders and revenue.
        if self.sku is None and self.shade is not None:
            self.sku = self.shade
        return self


Intensity = Annotated[float, Field(ge=0, le=1)]
Finish = Literal["matte", "satin", "gloss", "shimmer"]


class _SelectionProps(Properties):
    """What a stream session's selection carries (glasses: sku/variant; shade: these)."""

    intensity: Intensity | None = None
    finish: Finish | None = None


class TryOnStartedProps(_SelectionProps):
    product_type: Literal["glasses", "lipstick"] | None = None


class FrameAppliedProps(Properties):
    sku: ShortStr


class ShadeAppliedProps(_SelectionProps):
    shade: ShortStr


class TryOnDwellProps(_SelectionProps):
    dwell_ms: Annotated[int, Field(ge=0, le=24 * 3600 * 1000)]
    reason: Scalar | None = Field(default=None, description="switch | end")
    # The stream's session summary, on its last dwell.
    session_end: Scalar | None = None
    frames: Scalar | None = None
    dropped_frames: Scalar | None = None
    session_ms: Scalar | None = None
    # Server-measured try-on counts of the session (docs/events.md "What counts as a try-on").
    try_ons: Scalar | None = None
    short_selections: Scalar | None = None
    adjustments: Scalar | None = None


class SnapshotCapturedProps(_SelectionProps):
    frame_id: Scalar | None = None


class ProductAddedProps(Properties):
    quantity: Annotated[int, Field(ge=1, le=1000)] = 1

    @model_validator(mode="after")
    def _has_product(self) -> ProductAddedProps:
        if self.sku is None:
            raise ValueError("Product Added needs `sku` (or a lipstick's `shade`)")
        return self


class OrderLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: ShortStr | None = None
    variant: ShortStr | None = None
    shade: ShortStr | None = None
    name: Scalar | None = None
    category: Scalar | None = None
    price: Money | None = None
    currency: Currency | None = None
    quantity: Annotated[int, Field(ge=1, le=1000)] = 1

    @model_validator(mode="after")
    def _sku_or_shade(self) -> OrderLine:
        if self.sku is None:
            if self.shade is None:
                raise ValueError("an order line needs `sku` (or a lipstick's `shade`)")
            self.sku = self.shade  # a shade's sku is its id
        return self


class OrderCompletedProps(Properties):
    order_id: ShortStr
    # One line: `sku` (stored in the sku column). Several: `products` (each line's sku).
    products: Annotated[list[OrderLine], Field(max_length=200)] = []
    total: Money | None = None
    # A one-line order's quantity (revenue = price x quantity); lines carry their own.
    quantity: Annotated[int, Field(ge=1, le=1000)] | None = None

    @model_validator(mode="after")
    def _has_lines(self) -> OrderCompletedProps:
        if self.sku is None and not self.products:
            raise ValueError("Order Completed needs `sku` or a non-empty `products` list")
        return self


class FeedbackSubmittedProps(Properties):
    nps: Annotated[int, Field(ge=0, le=10, description="Net Promoter score 0-10")]
    comment: Annotated[str, Field(max_length=2000)] | None = None


class SupportIssueOpenedProps(Properties):
    issue_id: ShortStr
    topic: Annotated[str, Field(max_length=200)] | None = None


class SupportIssueResolvedProps(Properties):
    issue_id: ShortStr


class OfferProps(Properties):
    offer_id: ShortStr
    coupon: ShortStr | None = None
    rank: Scalar | None = None
    reason: Scalar | None = None


PROPERTIES_BY_EVENT: dict[EventName, type[Properties]] = {
    EventName.TRY_ON_STARTED: TryOnStartedProps,
    EventName.FRAME_APPLIED: FrameAppliedProps,
    EventName.SHADE_APPLIED: ShadeAppliedProps,
    EventName.TRY_ON_DWELL: TryOnDwellProps,
    EventName.SNAPSHOT_CAPTURED: SnapshotCapturedProps,
    EventName.PRODUCT_ADDED: ProductAddedProps,
    EventName.ORDER_COMPLETED: OrderCompletedProps,
    EventName.FEEDBACK_SUBMITTED: FeedbackSubmittedProps,
    EventName.SUPPORT_ISSUE_OPENED: SupportIssueOpenedProps,
    EventName.SUPPORT_ISSUE_RESOLVED: SupportIssueResolvedProps,
    EventName.OFFER_SHOWN: OfferProps,
    EventName.OFFER_ACCEPTED: OfferProps,
    EventName.OFFER_REJECTED: OfferProps,
}
EVENT_NAMES: tuple[str, ...] = tuple(str(n) for n in EventName)
# Nested lists of objects with their own allow-list: {properties key: line model}.
NESTED_PROPERTIES: dict[str, type[BaseModel]] = {"products": OrderLine}


def allowed_keys(model: type[BaseModel]) -> frozenset[str]:
    """The keys a properties (or order line) model accepts."""
    return frozenset(model.model_fields)


class EventEnvelope(BaseModel):
    """The track-event envelope; accepts snake_case and Segment's camelCase names."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        str_strip_whitespace=True,
    )

    message_id: Annotated[str, Field(min_length=8, max_length=64)] = Field(
        description="Client-made unique id (a UUID); the de-duplication key."
    )
    event: str
    anonymous_id: Id | None = None
    user_id: Id | None = None
    session_id: Id | None = None
    channel: Channel = "web"
    store_id: ShortStr | None = None
    kiosk_id: ShortStr | None = None
    timestamp: datetime | None = Field(
        default=None, description="When it happened (ISO 8601); defaults to received_at."
    )
    properties: dict[str, Any] = {}
    context: dict[str, Any] = {}
    type: Literal["track"] | None = None  # Segment's message type, tolerated

    @model_validator(mode="before")
    @classmethod
    def _drop_segment_meta(cls, data: Any) -> Any:
        # Segment-shaped messages posted here carry delivery metadata we do not store;
        # any other unknown key is still an error (a typo must not lose data silently).
        if isinstance(data, dict) and SEGMENT_META_KEYS & data.keys():
            data = {k: v for k, v in data.items() if k not in SEGMENT_META_KEYS}
        return data

    @field_validator("channel", mode="before")
    @classmethod
    def _channel(cls, v: Any) -> Any:
        return _normalize_channel(v)

    @field_validator("timestamp")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        # A timestamp without an offset is read as UTC (what Segment's libraries send).
        return v.replace(tzinfo=UTC) if v is not None and v.tzinfo is None else v

    @model_validator(mode="after")
    def _either_id(self) -> EventEnvelope:
        if self.anonymous_id is None and self.user_id is None:
            raise ValueError("one of anonymous_id or user_id is required")
        return self


def _event_model(name: str, props: type[Properties]) -> type[EventEnvelope]:
    model_name = "".join(ch for ch in name.title() if ch.isalnum()) + "Event"
    return create_model(
        model_name,
        __base__=EventEnvelope,
        __doc__=f"The `{name}` touchpoint.",
        event=(Literal[name], ...),
        properties=(props, Field(default_factory=props)),
    )


EVENT_MODELS: dict[str, type[EventEnvelope]] = {
    str(name): _event_model(str(name), props) for name, props in PROPERTIES_BY_EVENT.items()
}


@functools.cache
def event_json_schemas() -> dict[str, dict[str, Any]]:
    """{event name: JSON Schema} as served by GET /v1/events/schemas."""
    # snake_case names in the schema; the camelCase aliases are accepted too.
    return {name: model.model_json_schema(by_alias=False) for name, model in EVENT_MODELS.items()}
