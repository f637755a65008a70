"""GET /v1/shoppers/{id}/offers and POST .../offers/{offer_id}/feedback.

Kiosk scope (kiosk keys, session tokens, admin), and only for a shopper the caller may act
for (service.touchpoints.ownership): a session its own, a kiosk key the shoppers it served.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from service.deps import RuntimeDep, SessionDep
from service.errors import AUTH_ERRORS, error_responses
from service.offers.schemas import FeedbackIn, FeedbackOut, OffersOut
from service.offers.service import get_offers, record_feedback
from service.touchpoints.ownership import ShopperAccessDep
from service.touchpoints.schemas import Channel

router = APIRouter(
    prefix="/v1/shoppers", tags=["offers"], responses=error_responses(422, *AUTH_ERRORS)
)
# Ids as the events hold them (ingest's `Id`: 1-128 characters once stripped, no NUL); any
# other id can have no history, and Offer Shown events for it would be rejected.
ShopperId = Annotated[
    str, Path(min_length=1, max_length=128, pattern=r"^[^\x00]*[^\x00\s][^\x00]*$")
]
OfferId = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[^\x00]+$")]


@router.get("/{shopper_id}/offers", response_model=OffersOut, response_model_exclude_unset=True)
def list_offers(
    shopper_id: ShopperId,
    rt: RuntimeDep,
    session: SessionDep,
    _: ShopperAccessDep,
    channel: Annotated[
        Channel | None,
        Query(
            description="requesting channel; default: the channel the shopper uses most",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=20)] = 5,
) -> dict[str, Any]:
    """Ranked products with reasons and an optional coupon; empty with `reason` when suppressed."""
    offers = rt.offers
    return get_offers(
        session,
        offers.policy,
        offers.ingest,
        offers.items(),
        offers.stats,
        shopper_id,
        channel=channel,
        limit=limit,
    )


@router.post(
    "/{shopper_id}/offers/{offer_id}/feedback",
    response_model=FeedbackOut,
    responses=error_responses(404),
)
def offer_feedback(
    shopper_id: ShopperId,
    offer_id: OfferId,
    body: FeedbackIn,
    rt: RuntimeDep,
    session: SessionDep,
    _: ShopperAccessDep,
) -> dict[str, Any]:
    """Accepted/rejected: logged as an Offer Accepted/Rejected event; later ranking uses it."""
    return record_feedback(session, rt.offers.ingest, shopper_id, offer_id, body.action)
