"""Routes: DELETE /v1/shoppers/{id} (erasure) and POST /v1/admin/retention/run (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel

from service.auth import require_scope
from service.db.engine import SessionDep
from service.shoppers.erasure import erase_shopper
from service.shoppers.retention import purge_older_than

router = APIRouter(tags=["privacy"], dependencies=[Depends(require_scope("admin"))])


class ErasureOut(BaseModel):
    shopper_id: str
    erased: dict[str, int]


class RetentionOut(BaseModel):
    days: int
    deleted: dict[str, int]


@router.delete("/v1/shoppers/{shopper_id}", response_model=ErasureOut)
def delete_shopper(
    session: SessionDep, shopper_id: Annotated[str, Path(min_length=1, max_length=128)]
) -> ErasureOut:
    """Erase the shopper's events and derived data (linked ids included); answers counts."""
    return ErasureOut(shopper_id=shopper_id, erased=erase_shopper(session, shopper_id))


@router.post("/v1/admin/retention/run", response_model=RetentionOut)
def run_retention_now(
    request: Request,
    session: SessionDep,
    days: Annotated[
        int | None, Query(ge=1, le=36_500, description="default: settings.retention_days")
    ] = None,
) -> RetentionOut:
    days = days or request.app.state.settings.retention_days
    return RetentionOut(days=days, deleted=purge_older_than(session, days))
