"""GET /v1/shoppers/{id}/offers and POST .../offers/{offer_id}/feedback (kiosk scope)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel

from service.auth import KioskDep
from service.db.engine import SessionDep
from service.offers.catalog import OfferCatalog
from service.offers.ranking import Item
from service.offers.service import DEFAULT_STATS_TTL_S, StatsCache, get_offers, record_feedback
from service.touchpoints.schemas import Channel

router = APIRouter(prefix="/v1/shoppers", tags=["offers"])
# Ids as the events hold them (ingest's `Id`: 1-128 characters once stripped, no NUL); any
# other id can have no history, and Offer Shown events for it would be rejected.
ShopperId = Annotated[
    str, Path(min_length=1, max_length=128, pattern=r"^[^\x00]*[^\x00\s][^\x00]*$")
]
OfferId = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[^\x00]+$")]


class FeedbackIn(BaseModel):
    action: Literal["accepted", "rejected"]


def offer_items(request: Request) -> dict[str, Item]:
    """The rankable products: app.state.offer_items when set, else the served catalog."""
    st = request.app.state
    fixed = getattr(st, "offer_items", None)
    if fixed is not None:
        return fixed
    if getattr(st, "offer_catalog", None) is None:
        catalog = getattr(st, "catalog", None)
        if catalog is None:
            return {}
        st.offer_catalog = OfferCatalog(catalog)
    return st.offer_catalog.items()


def stats_cache(request: Request) -> StatsCache:
    st = request.app.state
    if getattr(st, "offer_stats", None) is None:
        st.offer_stats = StatsCache(getattr(st.settings, "offers_stats_ttl_s", DEFAULT_STATS_TTL_S))
    return st.offer_stats


@router.get("/{shopper_id}/offers")
def list_offers(
    shopper_id: ShopperId,
    request: Request,
    session: SessionDep,
    _: KioskDep,
    channel: Annotated[
        Channel | None,
        Query(
            description="requesting channel; default: the channel the shopper uses most",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=20)] = 5,
) -> dict[str, Any]:
    """Ranked products with reasons and an optional coupon; empty with `reason` when suppressed."""
    return get_offers(
        session,
        request.app.state.settings,
        offer_items(request),
        stats_cache(request),
        shopper_id,
        channel=channel,
        limit=limit,
    )


@router.post("/{shopper_id}/offers/{offer_id}/feedback")
def offer_feedback(
    shopper_id: ShopperId, offer_id: OfferId, body: FeedbackIn, session: SessionDep, _: KioskDep
) -> dict[str, Any]:
    """Accepted/rejected: logged as an Offer Accepted/Rejected event; later ranking uses it."""
    return record_feedback(session, shopper_id, offer_id, body.action)
