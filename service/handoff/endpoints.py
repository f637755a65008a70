"""Routes: POST /v1/handoff, GET /v1/handoff/{token}/qr.png, POST /v1/handoff/{token}/claim."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from service.access.deps import KioskDep
from service.deps import SessionDep, SettingsDep
from service.errors import AUTH_ERRORS, error_responses
from service.handoff import service
from service.handoff.schemas import ClaimIn, ClaimOut, MintIn, MintOut
from service.settings import Settings
from service.touchpoints.ownership import require_shopper_access

router = APIRouter(prefix="/v1/handoff", tags=["handoff"], responses=error_responses(422))
TokenPath = Annotated[str, Path(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


def _base_url(request: Request, settings: Settings) -> str:
    return (settings.public_base_url or str(request.base_url)).rstrip("/")


def handoff_url(request: Request, settings: Settings, token: str) -> str:
    # The demo page reads ?handoff= and claims it with the phone's anonymous id.
    return f"{_base_url(request, settings)}/demo/?handoff={quote(token)}"


@router.post(
    "",
    response_model=MintOut,
    status_code=201,
    responses=error_responses(*AUTH_ERRORS),
)
def mint_token(
    request: Request,
    settings: SettingsDep,
    session: SessionDep,
    body: MintIn,
    principal: KioskDep,
) -> MintOut:
    """A short-lived single-use token for the kiosk's anonymous shopper (a session token:
    its own shopper only; a kiosk key: a shopper it served)."""
    require_shopper_access(session, principal, body.anonymous_id)
    minted = service.mint(
        session,
        body.anonymous_id,
        ttl_s=settings.handoff_token_ttl_s,
        store_id=body.store_id,
        kiosk_id=body.kiosk_id,
    )
    return MintOut(
        token=minted.token,
        expires_at=minted.expires_at,
        url=handoff_url(request, settings, minted.token),
        qr_url=f"{_base_url(request, settings)}/v1/handoff/{minted.token}/qr.png",
    )


@router.get(
    "/{token}/qr.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, **error_responses(404, 409, 410)},
)
def token_qr(
    request: Request, settings: SettingsDep, session: SessionDep, token: TokenPath
) -> Response:
    """The hand-off URL as a PNG QR code (no key: the unguessable token is the capability)."""
    service.check_usable(session, token)
    png = service.qr_png(handoff_url(request, settings, token))
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.post(
    "/{token}/claim",
    response_model=ClaimOut,
    responses=error_responses(404, 409, 410, *AUTH_ERRORS),
)
def claim_token(
    session: SessionDep, token: TokenPath, body: ClaimIn, principal: KioskDep
) -> ClaimOut:
    """Link the phone's anonymous id to the kiosk's shopper; 404 unknown, 409 used, 410 expired.

    The claimant is the caller's own shopper (a session token claims only as itself). The
    answer carries the kiosk session's shortlist (products and shades tried, with dwell) and
    cart, so the phone shows them at once."""
    require_shopper_access(session, principal, body.anonymous_id)
    c = service.claim(session, token, body.anonymous_id)
    kiosk = service.kiosk_shortlist(session, c.shopper_id)
    return ClaimOut(
        shopper_id=c.shopper_id,
        claimed_by=c.claimed_by,
        linked_ids=c.linked_ids,
        shortlist=kiosk["shortlist"],
        cart=kiosk["cart"],
    )
