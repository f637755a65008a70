"""Engine and session factories for SQLite (WAL) and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 10_000


def normalize_url(url: str) -> str:
    """Use the psycopg 3 driver for bare postgresql:// URLs (psycopg2 is not installed)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL: readers never block the writer; NORMAL sync is durable across app crashes in WAL.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    # Deleted content is overwritten with zeros, not left in free pages: an erasure is
    # physical once the WAL is checkpointed (see checkpoint_wal).
    cur.execute("PRAGMA secure_delete=ON")
    cur.close()


def checkpoint_wal(engine: Engine) -> tuple[int, int, int] | None:
    """SQLite: copy the WAL into the database file and truncate the WAL to zero bytes.

    Run after an erasure commits, so no frame of the WAL keeps the erased rows' old pages.
    Returns SQLite's (busy, wal frames, checkpointed frames); busy=1 means a reader held an
    older snapshot past the busy timeout and the WAL could not be emptied. PostgreSQL: None
    (deleted tuples stay on disk until VACUUM reclaims them; see docs/events.md).
    """
    if engine.dialect.name != "sqlite":
        return None
    with engine.connect() as conn:
        row = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
    return int(row[0]), int(row[1]), int(row[2])


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            # Sessions are used from worker threads (event sink, thread-pool endpoints).
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            **kwargs,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    # expire_on_commit=False: response models read attributes after the dependency commits.
    return sessionmaker(engine, expire_on_commit=False)
