"""Routes: DELETE /v1/shoppers/{id} (erasure) and POST /v1/admin/retention/run (admin)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel

from service.access.deps import require_scope
from service.db.engine import checkpoint_wal
from service.deps import RuntimeDep, SessionDep
from service.errors import AUTH_ERRORS, error_responses
from service.shoppers.erasure import erase_shopper
from service.shoppers.retention import purge_older_than

log = logging.getLogger(__name__)

router = APIRouter(
    tags=["privacy"],
    dependencies=[Depends(require_scope("admin"))],
    responses=error_responses(422, *AUTH_ERRORS),
)


class ErasureOut(BaseModel):
    shopper_id: str
    erased: dict[str, int]


class RetentionOut(BaseModel):
    days: int
    deleted: dict[str, int]


@router.delete("/v1/shoppers/{shopper_id}", response_model=ErasureOut)
def delete_shopper(
    rt: RuntimeDep,
    shopper_id: Annotated[str, Path(min_length=1, max_length=128)],
) -> ErasureOut:
    """Erase the shopper's events and derived data (linked ids included); answers counts.

    Physical, not only logical: SQLite zeroes deleted content (secure_delete, every
    connection) and the WAL is checkpointed and truncated once the erasure has committed, so
    neither file keeps the erased rows. PostgreSQL: dead tuples until (auto)VACUUM.
    """
    with rt.sessions.begin() as session:  # its own transaction: committed before the checkpoint
        erased = erase_shopper(session, shopper_id, rt.erasers)
    done = checkpoint_wal(rt.engine)
    if done is not None and done[0]:
        log.warning("erasure: the WAL checkpoint was blocked by a reader; it stays until the next")
    return ErasureOut(shopper_id=shopper_id, erased=erased)


@router.post("/v1/admin/retention/run", response_model=RetentionOut)
def run_retention_now(
    rt: RuntimeDep,
    session: SessionDep,
    days: Annotated[
        int | None, Query(ge=1, le=36_500, description="default: settings.retention_days")
    ] = None,
) -> RetentionOut:
    days = days or rt.settings.retention_days
    return RetentionOut(days=days, deleted=purge_older_than(session, days, rt.purgers))
