"""POST /v1/sessions: a short-lived anonymous session token, bound to one shopper id.

The public demo key can do nothing else: a browser mints a session and uses the token for
every call, so each shopper has its own budget and sees only its own data.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from service.access.deps import DemoDep
from service.access.tokens import new_shopper_id
from service.deps import RuntimeDep
from service.errors import AUTH_ERRORS, Forbidden, error_responses

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])


class SessionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    anonymous_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=r"^[^\x00]*[^\x00\s][^\x00]*$",
        description="Kiosk and admin keys only: the kiosk's own anonymous shopper id. "
        "Default (and always for the demo key): a new pseudonymous id.",
    )


class SessionOut(BaseModel):
    token: str = Field(description="Send as `Authorization: Bearer <token>` (or X-API-Key).")
    shopper_id: str = Field(description="The one shopper this token acts for (anonymous_id).")
    expires_at: datetime
    expires_in: int = Field(description="Seconds until it expires; mint a new one on 401.")


@router.post(
    "",
    status_code=201,
    response_model=SessionOut,
    responses=error_responses(422, *AUTH_ERRORS),
    summary="Mint an anonymous session token (demo, kiosk or admin key)",
)
async def mint_session(
    rt: RuntimeDep,
    principal: DemoDep,
    body: Annotated[SessionIn | None, Body()] = None,
) -> SessionOut:
    tokens = rt.auth.tokens
    if tokens is None:  # pragma: no cover - always wired by build_runtime
        raise Forbidden("sessions are not enabled")
    shopper_id = body.anonymous_id if body is not None else None
    if shopper_id is not None and principal.is_demo:
        raise Forbidden("the demo key cannot choose the shopper id; leave anonymous_id out")
    if principal.is_demo and principal.client is not None:
        # Each client its own minting budget: nobody can spend the public key for the rest.
        await run_in_threadpool(
            rt.limiter.check_bucket,
            f"mint:{principal.client}",
            rt.settings.session_mint_per_minute_per_client,
            "session minting from this client address",
        )
    shopper_id = shopper_id or new_shopper_id()
    token, expires = tokens.mint(shopper_id, principal.key_id)
    return SessionOut(
        token=token,
        shopper_id=shopper_id,
        expires_at=datetime.fromtimestamp(expires, UTC),
        expires_in=tokens.ttl_s,
    )
