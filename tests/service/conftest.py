"""The service suite's fixtures: one live server, one database, one set of keys.

- `db_url`: a fresh, empty database per test module, parametrised over SQLite and
  PostgreSQL (the postgres case is marked `postgres`). Modules share it among their tests.
- `server_settings`: the Settings `live_server` starts with; a module overrides this fixture
  to change a limit or to point the server at `db_url`. The default is a SQLite file.
- `live_server`: the real app under uvicorn on a free loopback port (module scope).
- `keys`: one unlimited key per scope (kiosk, analyst, admin, demo) on that server.
- `api`: the live server, an HTTP client on it and the keys, together.

The helpers behind them (LiveServer, fresh_database, create_keys, make_settings) are in
tests/service/harness.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.settings import Settings
from tests.service.harness import Api, LiveServer, create_keys, fresh_database, make_settings


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An empty database for this module: a SQLite file, or a private PostgreSQL database
    created on the real server and dropped afterwards."""
    with fresh_database(request.param, tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(scope="module")
def server_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """What `live_server` is started with (override in a module to change it)."""
    return make_settings(tmp_path_factory.mktemp("server"))


@pytest.fixture(scope="module")
def live_server(server_settings: Settings) -> Iterator[LiveServer]:
    """The real app (migrations run in its lifespan) under uvicorn, one per module."""
    with LiveServer(server_settings) as server:
        yield server


@pytest.fixture(scope="module")
def keys(live_server: LiveServer) -> dict[str, str]:
    """scope -> raw key, one per scope, with no rate limit."""
    return create_keys(live_server.app.state.runtime.sessions)


@pytest.fixture(scope="module")
def api(live_server: LiveServer, keys: dict[str, str]) -> Iterator[Api]:
    """The live server through one HTTP client, with `keys`."""
    client = Api(live_server, keys)
    yield client
    client.close()
