"""The one dialect-aware INSERT (for ON CONFLICT clauses) on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_for(bind: Session | Connection | Engine, table: Table | Any) -> Any:
    """INSERT for `table` in the dialect of `bind`, so `.on_conflict_do_*` is available."""
    name = bind.get_bind().dialect.name if isinstance(bind, Session) else bind.dialect.name
    dialect = postgresql if name == "postgresql" else sqlite
    return dialect.insert(table)
