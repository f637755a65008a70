"""Helpers shared by the analytics and offers tests: event builders and both real databases."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from service.db.engine import make_engine, make_sessionmaker
from service.db.migrate import upgrade
from service.touchpoints.service import ingest
from service.wiring import ingest_hooks

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


def ev(
    event: str, shopper: str, at: datetime, channel: str = "web", **props: Any
) -> dict[str, Any]:
    """One API-shaped event; store_id and variant etc. go in properties or the envelope."""
    envelope = {k: props.pop(k) for k in ("store_id", "kiosk_id", "user_id") if k in props}
    return {
        "message_id": uuid.uuid4().hex,
        "event": event,
        "anonymous_id": shopper,
        "channel": channel,
        "timestamp": at.isoformat(),
        "properties": props,
        **envelope,
    }


def store(
    factory: sessionmaker[Session], events: list[dict[str, Any]], now: datetime | None = None
) -> None:
    """Insert through the real ingest path; every event must be accepted."""
    with factory.begin() as session:
        res = ingest(session, events, source="test", hooks=ingest_hooks(), now=now)
    bad = [r for r in res.results if r.status != "accepted"]
    assert not bad, bad


def empty_engine(backend: str, tmp: Path, request: pytest.FixtureRequest) -> Engine:
    """An unmigrated database: a SQLite file, or a private schema in the run's PostgreSQL."""
    if backend == "sqlite":
        return make_engine(f"sqlite:///{tmp / 'analytics.sqlite'}")
    # A private schema inside the run's database: other modules' tables are never touched.
    schema = f"t_{uuid.uuid4().hex[:10]}"
    engine = make_engine(
        request.getfixturevalue("pg_database_url"),
        connect_args={"options": f"-csearch_path={schema}"},
    )
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    return engine


def database(
    backend: str, tmp: Path, request: pytest.FixtureRequest
) -> Iterator[sessionmaker[Session]]:
    """A migrated database: a SQLite file, or the run's private PostgreSQL database."""
    engine = empty_engine(backend, tmp, request)
    upgrade(engine)
    try:
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()
