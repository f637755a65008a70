"""Budgets per session token and per client address (X-Forwarded-For only from a trusted
proxy), stream tickets across two replicas on one PostgreSQL database, and no credential in
uvicorn's access log."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.client import connect

from service.ops.log_redaction import redact
from service.settings import Settings
from tests.service.harness import DEMO_KEY, LiveServer, fresh_database, make_settings


def _mint(server: LiveServer, headers: dict[str, str] | None = None) -> str:
    with server.client(DEMO_KEY) as c:
        r = c.post("/v1/sessions", headers=headers or {})
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def _status(server: LiveServer, token: str, headers: dict[str, str] | None = None) -> int:
    with server.client(token) as c:
        return c.get("/v1/shades", headers=headers or {}).status_code


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def budget_db(request: pytest.FixtureRequest,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of its own per test (the budgets' counters live in it)."""
    with fresh_database(request.param, tmp_path_factory.mktemp("db")) as url:
        _fresh_window()
        yield url


def _fresh_window() -> None:
    """Budgets count in fixed one-minute windows: start a test well before one ends."""
    left = 60 - time.time() % 60
    if left < 12:
        time.sleep(left + 0.1)


def _server(tmp: Path, db: str, **over: object) -> LiveServer:
    values: dict[str, object] = {"database_url": db, "session_rate_limit_per_minute": 4,
                                 "client_rate_limit_per_minute": 8,
                                 "session_mint_per_minute_per_client": 4}
    values.update(over)
    return LiveServer(make_settings(tmp, **values))


class TestBudgets:
    def test_per_token_and_per_client(self, budget_db: str, tmp_path: Path) -> None:
        with _server(tmp_path, budget_db) as server:
            a, b = _mint(server), _mint(server)  # the client's requests 1-2
            codes = [_status(server, a) for _ in range(5)]  # 3-6, then the token's own limit
            assert codes == [200, 200, 200, 200, 429]
            assert [_status(server, b) for _ in range(2)] == [200, 200]  # 7-8: b has its own
            with server.client(b) as c:
                r = c.get("/v1/shades")
            assert r.status_code == 429 and "client address" in r.json()["error"]["message"]

    def test_minting_budget_per_client(self, budget_db: str, tmp_path: Path) -> None:
        with _server(tmp_path, budget_db, client_rate_limit_per_minute=100) as server:
            for _ in range(4):
                _mint(server)
            with server.client(DEMO_KEY) as c:
                r = c.post("/v1/sessions")
            assert r.status_code == 429 and "minting" in r.json()["error"]["message"]

    def test_forwarded_for_ignored_from_an_untrusted_peer(self, budget_db: str,
                                                          tmp_path: Path) -> None:
        with _server(tmp_path, budget_db) as server:
            a, b = _mint(server), _mint(server)
            spoof = [{"X-Forwarded-For": f"203.0.113.{i}"} for i in range(8)]
            codes = [_status(server, t, h) for t, h in zip([a, a, a, b, b, b, b, b], spoof,
                                                             strict=True)]
            # Eight "addresses", four requests per token at most: yet one client (2 + 6 = 8).
            assert codes == [200, 200, 200, 200, 200, 200, 429, 429]

    def test_forwarded_for_used_from_a_trusted_proxy(self, budget_db: str,
                                                     tmp_path: Path) -> None:
        with _server(tmp_path, budget_db, trusted_proxies=["127.0.0.0/8"],
                     client_rate_limit_per_minute=3) as server:
            one = {"X-Forwarded-For": "198.51.100.7"}
            two = {"X-Forwarded-For": "198.51.100.8, 127.0.0.1"}  # via a second proxy of ours
            a, b = _mint(server, one), _mint(server, two)
            assert [_status(server, a, one) for _ in range(3)] == [200, 200, 429]
            assert [_status(server, b, two) for _ in range(3)] == [200, 200, 429]


@pytest.mark.postgres
class TestTwoReplicas:
    def test_ticket_minted_on_one_replica_opens_the_stream_on_the_other(
        self, tmp_path_factory: pytest.TempPathFactory
    ) -> None:
        with fresh_database("postgres", tmp_path_factory.mktemp("db")) as db:
            s1 = make_settings(tmp_path_factory.mktemp("r1"), database_url=db)
            s2 = make_settings(tmp_path_factory.mktemp("r2"), database_url=db)
            with LiveServer(s1) as one, LiveServer(s2) as two:
                token = _mint(one)
                assert _status(two, token) == 200  # one shared secret: tokens work anywhere
                with one.client(token) as c:
                    ticket = c.post("/v1/tryon/stream-tickets").json()["ticket"]
                with connect(f"{two.ws_url}/v1/tryon/stream?ticket={ticket}") as ws:
                    assert json.loads(ws.recv(timeout=20))["type"] == "ready"
                for server in (one, two):  # spent: on both replicas
                    with connect(f"{server.ws_url}/v1/tryon/stream?ticket={ticket}") as ws:
                        msg = json.loads(ws.recv(timeout=20))
                        assert msg["type"] == "error" and "ticket" in msg["message"]


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def access_log() -> Iterator[_Capture]:
    """uvicorn's access and error lines (attach after the server started: its logging
    config replaces the loggers' handlers, though never their filters)."""
    handler = _Capture()
    loggers = [logging.getLogger(n) for n in ("uvicorn.access", "uvicorn.error")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)


class TestSecretsOutOfLogs:
    def test_redact(self) -> None:
        assert redact('GET /v1/x?a=1&key=tk_secret&ticket=wt_1 HTTP/1.1') == (
            'GET /v1/x?a=1&key=***&ticket=*** HTTP/1.1')
        assert redact("/demo/?handoff=abc&token=st_x.y") == "/demo/?handoff=***&token=***"
        assert redact("/v1/products?type=glasses") == "/v1/products?type=glasses"

    def test_stream_and_http_lines_carry_no_credential(self, tmp_path: Path) -> None:
        settings: Settings = make_settings(tmp_path)
        with LiveServer(settings) as server, access_log() as log:
            token = _mint(server)
            with server.client(token) as c:
                ticket = c.post("/v1/tryon/stream-tickets").json()["ticket"]
                c.get(f"/v1/shades?key={DEMO_KEY}&token={token}")
            with connect(f"{server.ws_url}/v1/tryon/stream?ticket={ticket}&sku=x") as ws:
                ws.recv(timeout=20)
            with connect(f"{server.ws_url}/v1/tryon/stream?key={DEMO_KEY}") as ws:
                ws.recv(timeout=20)
        text = "\n".join(log.lines)
        assert "/v1/tryon/stream?ticket=***&sku=x" in text, text
        assert "/v1/shades?key=***&token=***" in text, text
        for secret in (ticket, token, DEMO_KEY):
            assert secret not in text
