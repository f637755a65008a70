"""Routes: GET /v1/events/schemas, POST /v1/events (a batch of up to 500 touchpoints) and
GET /v1/admin/rejections (the recent rejected touchpoints, admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from pydantic import AliasChoices, BaseModel, Field

from service.access.deps import AdminDep, KioskDep
from service.deps import RuntimeDep, SessionDep
from service.errors import AUTH_ERRORS, PayloadTooLarge, error_responses
from service.touchpoints import rejections
from service.touchpoints.schemas import EVENT_NAMES, event_json_schemas

router = APIRouter(tags=["events"])


class EventSchemasOut(BaseModel):
    events: list[str] = Field(description="Every known event name.")
    schemas: dict[str, dict[str, Any]] = Field(description="{event name: JSON Schema}")


class EventBatchIn(BaseModel):
    events: list[Any] = Field(
        validation_alias=AliasChoices("events", "batch"),
        description="Touchpoints (see GET /v1/events/schemas); each is validated on its own.",
    )


class EventResultOut(BaseModel):
    index: int
    message_id: str | None = None
    status: str = Field(description="accepted | duplicate | rejected")
    error: dict[str, Any] | None = None
    warnings: list[str] = []


class IngestOut(BaseModel):
    inserted: int
    duplicates: int
    rejected: int
    results: list[EventResultOut]


def check_batch_size(n: int, limit: int) -> None:
    if n > limit:
        raise PayloadTooLarge(
            f"batch has {n} events; at most {limit} per request",
            detail={"limit": limit, "received": n},
        )


@router.get("/v1/events/schemas", response_model=EventSchemasOut)
def event_schemas() -> dict[str, Any]:
    """One JSON Schema per event name (snake_case shown; Segment camelCase also accepted)."""
    return {"events": list(EVENT_NAMES), "schemas": event_json_schemas()}


@router.post(
    "/v1/events",
    response_model=IngestOut,
    responses=error_responses(400, 413, 422, *AUTH_ERRORS),
)
def post_events(
    rt: RuntimeDep,
    session: SessionDep,
    principal: KioskDep,
    body: Annotated[EventBatchIn | list[Any], Body()],
) -> dict[str, Any]:
    """Store a batch idempotently; answers per-event acceptance or the reason for rejection.

    A session token stores only its own shopper's events (others: rejected per event with
    code "forbidden_shopper"); every stored event records the key that stored it.
    """
    events = body.events if isinstance(body, EventBatchIn) else body
    check_batch_size(len(events), rt.settings.event_max_batch)
    only = principal.shopper_id if principal.is_session else None
    return rt.ingest(
        session, events, source="api", key_id=principal.key_id, shopper_id=only
    ).to_dict()


class RejectionOut(BaseModel):
    at: str = Field(description="when it was rejected (server time, ISO 8601)")
    source: str = Field(description="api | segment | stream | ...")
    event: str | None = Field(description="the event name as sent")
    message_id: str | None = None
    code: str = Field(description="the rejection code (docs/events.md)")
    message: str = Field(description="the reason; field paths and error types, never values")


class RejectionsOut(BaseModel):
    items: list[RejectionOut]
    count: int


@router.get(
    "/v1/admin/rejections",
    response_model=RejectionsOut,
    responses=error_responses(422, *AUTH_ERRORS),
    tags=["admin"],
)
def list_rejections(
    session: SessionDep,
    _: AdminDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    code: Annotated[str | None, Query(max_length=32)] = None,
) -> dict[str, Any]:
    """The newest rejected touchpoints from every source and replica (like Segment's
    debugger): time, source, event name, message id, reason. No shopper ids or property
    values are kept; counts by reason are in /metrics (`tryon_events_rejected_total`)."""
    items = rejections.recent(session, limit, code=code)
    return {"items": items, "count": len(items)}
