"""Fixtures for the events tests: the real app on a real SQLite file or PostgreSQL database.

Test modules pull these in with `from tests.service.events_support import *`.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from service.app import create_app
from service.settings import Settings
from tests.conftest import PG_ADMIN_URL

__all__ = ["Api", "api", "db_url", "fresh_database", "live_server", "new_id", "track"]


def new_id(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex}"


def track(event: str, shopper: str, **props: Any) -> dict[str, Any]:
    """A valid POST /v1/events item."""
    return {
        "message_id": new_id(),
        "event": event,
        "anonymous_id": shopper,
        "channel": "kiosk",
        "timestamp": datetime.now(UTC).isoformat(),
        "properties": props,
    }


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An empty database per test module: a SQLite file, or a private PostgreSQL database.

    Private per module (not the run's shared pg_database_url) so counts never see rows
    written by other features' tests in the same run.
    """
    with fresh_database(request.param, tmp_path_factory.mktemp("events")) as url:
        yield url


@contextmanager
def fresh_database(kind: str, tmp_dir: Path) -> Iterator[str]:
    """An empty SQLite file under tmp_dir, or a new PostgreSQL database dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_dir}/events.sqlite"
        return
    import psycopg

    name = f"tryon_ev_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Api:
    app: FastAPI
    client: TestClient
    sessionmaker: sessionmaker[Session]
    keys: dict[str, str]  # scope -> raw key

    def headers(self, scope: str = "kiosk") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}"}

    def post_events(self, events: Any, scope: str = "kiosk") -> Any:
        return self.client.post("/v1/events", json={"events": events}, headers=self.headers(scope))


def _make_keys(app: FastAPI) -> dict[str, str]:
    from service.access.keys import create_key

    keys = {}
    with app.state.runtime.sessions.begin() as session:
        for scope in ("kiosk", "analyst", "admin", "demo"):
            # rate_limit 0: unlimited, the tests are not about rate limits
            _, keys[scope] = create_key(session, f"test {scope}", [scope], rate_limit_per_minute=0)
    return keys


@pytest.fixture(scope="module")
def api(db_url: str) -> Iterator[Api]:
    """The real app (migrations run in its lifespan) behind TestClient, with one key per scope."""
    app = create_app(Settings(database_url=db_url, demo_api_key="", retention_days=365))
    with TestClient(app) as client:
        yield Api(app, client, app.state.runtime.sessions, _make_keys(app))


@pytest.fixture(scope="module")
def live_server(api: Api) -> Iterator[str]:
    """The same app served by a real uvicorn on a free loopback port (for the Segment SDK)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # lifespan="off": the TestClient already ran it; both share app.state (engine, keys).
    config = uvicorn.Config(api.app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=5)
    sock.close()
