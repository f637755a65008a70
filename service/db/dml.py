"""Typed Core helpers: a mapped class's Table, and the row count of an UPDATE or DELETE."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Connection, CursorResult, Table
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Delete, Update

from service.db.base import Base


def table_of(model: type[Base]) -> Table:
    """model.__table__ as the Table it always is here (SQLAlchemy types it as any FromClause)."""
    return cast(Table, model.__table__)


def affected(session: Session | Connection, stmt: Delete | Update) -> int:
    """Execute stmt; the number of rows it matched, as the driver reports it."""
    # DML always yields a CursorResult; Session.execute is typed as returning a plain Result.
    return cast("CursorResult[Any]", session.execute(stmt)).rowcount
