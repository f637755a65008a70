"""Who may read or act for one shopper: the one ownership rule of the service.

- admin keys: every shopper;
- session tokens: only their own shopper (the id the token was minted for);
- kiosk keys: only shoppers they served, i.e. with a stored event (of the shopper or an id
  linked to it) whose `key_id` is the kiosk key's;
- anyone else (analyst, demo keys): no shopper at all (aggregates only).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from service.access.deps import KioskDep
from service.access.keys import Principal
from service.deps import SessionDep
from service.errors import Forbidden
from service.identity.service import resolve_shopper_ids
from service.touchpoints.models import Event


def can_access_shopper(session: Session, principal: Principal, shopper_id: str) -> bool:
    if "admin" in principal.scopes:
        return True
    if principal.is_session:
        return principal.shopper_id is not None and shopper_id == principal.shopper_id
    if "kiosk" in principal.scopes:
        ids = resolve_shopper_ids(session, shopper_id)
        served = select(Event.id).where(
            Event.key_id == principal.key_id,
            or_(Event.shopper_id.in_(ids), Event.anonymous_id.in_(ids), Event.user_id.in_(ids)),
        )
        return session.scalar(served.limit(1)) is not None
    return False


def require_shopper_access(session: Session, principal: Principal, shopper_id: str) -> None:
    """Forbidden (403, code forbidden_shopper) unless principal may act for shopper_id."""
    if not can_access_shopper(session, principal, shopper_id):
        raise ForbiddenShopper(
            "this credential may not read or act for that shopper",
            detail={"shopper_id": shopper_id},
        )


class ForbiddenShopper(Forbidden):
    code = "forbidden_shopper"


# Ids as the events hold them (ingest's `Id`): validated (422) before ownership is decided.
ShopperIdPath = Annotated[
    str, Path(min_length=1, max_length=128, pattern=r"^[^\x00]*[^\x00\s][^\x00]*$")
]


def _shopper_path_access(
    shopper_id: ShopperIdPath, session: SessionDep, principal: KioskDep
) -> Principal:
    require_shopper_access(session, principal, shopper_id)
    return principal


# A route with a {shopper_id} path parameter: the caller, allowed to act for that shopper.
ShopperAccessDep = Annotated[Principal, Depends(_shopper_path_access)]
