"""The one test harness for the service: a real uvicorn server, private databases, API keys.

Fixtures built on these live in tests/service/conftest.py (`live_server`, `db_url`, `keys`);
this module holds the plain helpers so other suites (tests/browser, benchmarks) can import
them too: `from tests.service.harness import LiveServer`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy.orm import Session, sessionmaker

from service.settings import Settings
from tests.conftest import PG_ADMIN_URL

ROOT = Path(__file__).resolve().parents[2]
ADMIN_KEY = "tryon-test-admin-key"
DEMO_KEY = "tryon-test-demo-key"
SCOPES = ("kiosk", "analyst", "admin", "demo")


def free_port() -> int:
    """A free loopback port (for something that must bind it itself: a subprocess)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Any, timeout_s: float = 20.0, interval_s: float = 0.1) -> Any:
    """Poll until predicate() is truthy (events are written asynchronously, off the frames)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval_s)


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Test settings: a SQLite file under tmp_path, known admin/demo keys, no rate limits
    in the way (per-key limits are tested explicitly), no retention run at start-up."""
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path}/tryon.sqlite",
        "redis_url": None,
        "bootstrap_admin_key": ADMIN_KEY,
        "demo_api_key": DEMO_KEY,
        "worker_threads": 2,
        "retention_on_startup": False,
        "event_flush_interval_s": 0.2,
        "event_spool_dir": str(tmp_path / "event-spool"),
        "lake_dir": str(tmp_path / "lake"),
        "rate_limit_per_minute": 100_000,
        "demo_rate_limit_per_minute": 100_000,
    }
    values.update(overrides)
    return Settings(**values)


@contextmanager
def fresh_database(kind: str, tmp_dir: Path) -> Iterator[str]:
    """An empty database: a SQLite file under tmp_dir, or a new PostgreSQL database on the
    real server (trust auth) that is dropped afterwards. Private, so counts never see rows
    written by other tests, and parallel runs never see each other."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_dir}/tryon-{uuid.uuid4().hex[:8]}.sqlite"
        return
    if kind != "postgres":
        raise ValueError(f"unknown database kind {kind!r}")
    import psycopg

    name = f"tryon_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_keys(sessions: sessionmaker[Session]) -> dict[str, str]:
    """One unlimited key per scope (kiosk, analyst, admin, demo): scope -> raw key."""
    from service.access.keys import create_key

    keys = {}
    with sessions.begin() as session:
        for scope in SCOPES:
            # rate_limit 0: unlimited, the tests are not about rate limits
            _, keys[scope] = create_key(session, f"test {scope}", [scope], rate_limit_per_minute=0)
    return keys


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes `Settings()` in another process equal `settings`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TRYON_") and k not in ("DATABASE_URL", "REDIS_URL")}
    for name in settings.model_fields_set:
        value = getattr(settings, name)
        if value is None:
            text = ""
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (list, tuple, dict)):
            text = json.dumps(value)
        else:
            text = str(value)
        env[f"TRYON_{name.upper()}"] = text
    return env


class LiveServer:
    """The real app under a real uvicorn on a free loopback port, started with `settings`.

    In-process (default): uvicorn in a background thread, lifespan on; `app` is the
    FastAPI app, so tests reach `app.state.runtime` (sessions, settings, metrics).
    process=True: `python -m uvicorn --factory service.app:create_app` in a subprocess
    whose environment carries `settings` (replicas, crash isolation); `app` is None and
    the output goes to `log_path`.
    """

    def __init__(self, settings: Settings, *, process: bool = False,
                 log_path: Path | None = None, **app_kwargs: Any) -> None:
        self.settings = settings
        self.process = process
        self.app: Any = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = log_path
        self._app_kwargs = app_kwargs
        self._kiosk_key: str | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        if process:
            self.port = free_port()
        else:  # bound now and handed to uvicorn: no window for another process to take it
            self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._sock.bind(("127.0.0.1", 0))
            self.port = int(self._sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url

    # -- life cycle -----------------------------------------------------------------------
    def start(self, timeout_s: float = 120.0) -> LiveServer:
        if self.process:
            self._start_process(timeout_s)
        else:
            self._start_thread(timeout_s)
        return self

    def _start_thread(self, timeout_s: float) -> None:
        from service.app import create_app

        self.app = create_app(self.settings, **self._app_kwargs)
        # proxy_headers off as in `python -m service`: the app trusts X-Forwarded-For only
        # from settings.trusted_proxies (uvicorn would believe any loopback peer's).
        config = uvicorn.Config(self.app, log_level="warning", lifespan="on", proxy_headers=False,
                                ws_max_size=8 * 1024 * 1024)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run,
                                        kwargs={"sockets": [self._sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)

    def start_process(self) -> None:
        """Launch the subprocess without waiting for it (start several at once; see ready)."""
        if self._app_kwargs:
            raise ValueError("app_kwargs need an in-process server")
        log = (self.log_path or Path(os.devnull)).open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "service.app:create_app",
             "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning",
             "--no-proxy-headers"],
            cwd=ROOT, env=settings_env(self.settings), stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()

    def _start_process(self, timeout_s: float) -> None:
        self.start_process()
        if not wait_for(self.ready, timeout_s=timeout_s, interval_s=0.25):
            raise RuntimeError(f"server not ready after {timeout_s}s:\n{self.log()}")

    def ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"server exited:\n{self.log()}")
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def log(self, chars: int = 3000) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(30)
        if self._sock is not None:
            self._sock.close()

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- clients --------------------------------------------------------------------------
    def client(self, key: str | None = None, *, header: str = "Authorization",
               **kw: Any) -> httpx.Client:
        """An httpx client on this server; `key` goes in as a bearer token (or X-API-Key)."""
        headers: dict[str, str] = {}
        if key:
            headers = {header: f"Bearer {key}" if header == "Authorization" else key}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60.0, **kw)

    @property
    def kiosk_key(self) -> str:
        """An unlimited kiosk key on this server, made once (what tests try on with: the
        public demo key can only mint sessions)."""
        if self._kiosk_key is None:
            self._kiosk_key = str(self.create_key(["kiosk"], rate_limit=0, name="kiosk")["key"])
        return self._kiosk_key

    def session(self, key: str = DEMO_KEY) -> dict[str, Any]:
        """A new session (token, shopper_id) minted with `key` (default: the demo key)."""
        with self.client(key) as c:
            r = c.post("/v1/sessions")
            r.raise_for_status()
            return dict(r.json())

    def ticket(self, key: str | None = None) -> str:
        """`ticket=...`: a single-use stream ticket for `key` (default: kiosk_key), as the
        query parameter the WebSocket URL takes."""
        with self.client(key or self.kiosk_key) as c:
            r = c.post("/v1/tryon/stream-tickets")
            r.raise_for_status()
            return f"ticket={r.json()['ticket']}"

    def create_key(self, scopes: list[str], rate_limit: int | None = None,
                   name: str = "test") -> dict[str, Any]:
        """A key made over HTTP with the bootstrap admin key (make_settings' ADMIN_KEY)."""
        with self.client(ADMIN_KEY) as c:
            r = c.post("/v1/keys", json={"name": name, "scopes": scopes,
                                         "rate_limit_per_minute": rate_limit})
            r.raise_for_status()
            return dict(r.json())


class Api:
    """A live server seen through one HTTP client, with one key per scope."""

    def __init__(self, server: LiveServer, keys: dict[str, str]) -> None:
        self.server = server
        self.keys = keys  # scope -> raw key
        self.client = server.client()

    @property
    def app(self) -> Any:
        return self.server.app

    @property
    def sessionmaker(self) -> sessionmaker[Session]:
        return self.server.app.state.runtime.sessions  # type: ignore[no-any-return]

    def headers(self, scope: str = "kiosk") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}"}

    def post_events(self, events: Any, scope: str = "kiosk") -> Any:
        return self.client.post("/v1/events", json={"events": events}, headers=self.headers(scope))

    def close(self) -> None:
        self.client.close()
