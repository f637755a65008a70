"""insert_new(): store event rows once (ON CONFLICT DO NOTHING), answer which were new."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, or_, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from service.db.dml import affected, table_of
from service.touchpoints.models import Event

_TABLE = table_of(Event)
_COLUMNS = [c.name for c in _TABLE.columns if c.name != "id"]
_QUOTED = ", ".join(f'"{c}"' for c in _COLUMNS)
# PostgreSQL: the whole batch as ONE jsonb parameter expanded server-side. A 500-row
# multi-VALUES statement has ~10k parameters, and psycopg spends more time parsing that query
# text than the server spends inserting (measured: 70 ms vs 20 ms per batch).
_PG_INSERT = text(
    f"INSERT INTO events ({_QUOTED}) "
    f"SELECT {_QUOTED} FROM jsonb_populate_recordset(NULL::events, CAST(:rows AS jsonb)) "
    "ON CONFLICT (message_id) DO NOTHING RETURNING message_id"
)
# SQLite: Core insert (not the ORM entity, whose bulk path would go row by row with RETURNING).
_SQLITE_INSERT = (
    sqlite.insert(_TABLE)
    .on_conflict_do_nothing(index_elements=["message_id"])
    .returning(_TABLE.c.message_id)
)


def _json_default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def insert_new(session: Session, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Insert rows whose message_id is not stored yet; returns the message_ids inserted.

    Rows must have unique message_ids among themselves (ingest() dedupes the batch first).
    Concurrent writers of the same id are safe: the unique constraint decides, one wins.
    """
    if not rows:
        return set()
    if session.get_bind().dialect.name == "postgresql":
        payload = json.dumps([{c: r.get(c) for c in _COLUMNS} for r in rows], default=_json_default)
        return set(session.execute(_PG_INSERT, {"rows": payload}).scalars())
    return set(session.execute(_SQLITE_INSERT, list(rows)).scalars())


# Delete in chunks so a first purge of millions of rows never holds one giant transaction lock.
PURGE_CHUNK = 50_000


def erase_events(session: Session, ids: Sequence[str]) -> dict[str, int]:
    """Every event of these shopper ids, whichever id column names them."""
    t = table_of(Event)
    cond = or_(t.c.shopper_id.in_(ids), t.c.anonymous_id.in_(ids), t.c.user_id.in_(ids))
    return {"events": affected(session, delete(t).where(cond))}


def purge_events(session: Session, cutoff: datetime, _now: datetime) -> dict[str, int]:
    """Raw events with timestamp before cutoff, in chunks."""
    total = 0
    while True:
        ids = select(Event.id).where(Event.timestamp < cutoff).limit(PURGE_CHUNK).scalar_subquery()
        n = affected(session, delete(Event).where(Event.id.in_(ids)))
        total += n
        if n < PURGE_CHUNK:
            return {"events": total}
