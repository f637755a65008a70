"""Admin endpoints for API keys: create (raw key shown once), list, revoke."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field
from sqlalchemy import select

from service.access.deps import AdminDep
from service.access.keys import create_key, revoke_key
from service.access.models import ApiKey
from service.deps import SessionDep
from service.errors import AUTH_ERRORS, NotFound, error_responses

router = APIRouter(prefix="/v1/keys", tags=["keys"], responses=error_responses(*AUTH_ERRORS))


class KeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    scopes: list[Literal["kiosk", "analyst", "admin", "demo"]] = Field(min_length=1)
    rate_limit_per_minute: int | None = Field(default=None, ge=0, le=1_000_000)


class KeyOut(BaseModel):
    id: int
    name: str
    prefix: str
    scopes: list[str]
    rate_limit_per_minute: int | None
    created_at: datetime
    revoked_at: datetime | None


class KeyCreated(KeyOut):
    key: str = Field(description="The raw key. Shown once; only its sha256 is stored.")


def _out(row: ApiKey) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "prefix": row.prefix,
        "scopes": sorted(row.scope_set),
        "rate_limit_per_minute": row.rate_limit_per_minute,
        "created_at": row.created_at,
        "revoked_at": row.revoked_at,
    }


@router.post(
    "",
    status_code=201,
    response_model=KeyCreated,
    responses=error_responses(400, 422),
    summary="Create a key (admin)",
)
def create(body: KeyIn, session: SessionDep, _: AdminDep) -> dict[str, Any]:
    row, raw = create_key(
        session, body.name, body.scopes, rate_limit_per_minute=body.rate_limit_per_minute
    )
    return {**_out(row), "key": raw}


@router.get("", response_model=list[KeyOut], summary="List keys (admin)")
def list_keys(session: SessionDep, _: AdminDep) -> list[dict[str, Any]]:
    return [_out(r) for r in session.scalars(select(ApiKey).order_by(ApiKey.id))]


@router.delete(
    "/{key_id}",
    response_model=KeyOut,
    responses=error_responses(404, 422),
    summary="Revoke a key (admin)",
)
def revoke(
    key_id: Annotated[int, Path(ge=1, le=2**63 - 1)], session: SessionDep, _: AdminDep
) -> dict[str, Any]:
    row = revoke_key(session, key_id)
    if row is None:
        raise NotFound(f"no key with id {key_id}")
    return _out(row)
