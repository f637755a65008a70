"""Revoking a key closes the streams it opened, and those of the session tokens it minted."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.service.harness import ADMIN_KEY, LiveServer, make_settings

CHECK_S = 0.2


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp: Path = tmp_path_factory.mktemp("revocation")
    with LiveServer(make_settings(tmp, stream_key_check_s=CHECK_S)) as live:
        yield live


@contextmanager
def _open(server: LiveServer, credential: str) -> Iterator[ClientConnection]:
    with connect(f"{server.ws_url}/v1/tryon/stream", open_timeout=30,
                 additional_headers={"X-API-Key": credential}) as ws:
        assert json.loads(ws.recv(timeout=30))["type"] == "ready"
        yield ws


def _closed_with(ws: ClientConnection, timeout_s: float = 10.0) -> tuple[dict[str, Any], int]:
    """The last text message before the server closed the stream, and the close code."""
    last: dict[str, Any] = {}
    deadline = time.monotonic() + timeout_s
    with pytest.raises(ConnectionClosed) as closed:
        while time.monotonic() < deadline:
            msg = ws.recv(timeout=timeout_s)
            if isinstance(msg, str):
                last = json.loads(msg)
    assert closed.value.rcvd is not None
    return last, closed.value.rcvd.code


def test_revoking_a_key_closes_its_open_streams(server: LiveServer) -> None:
    leaked = server.create_key(["kiosk"], name="kiosk-leaked", rate_limit=0)
    kept = server.create_key(["kiosk"], name="kiosk-kept", rate_limit=0)
    with server.client(leaked["key"]) as c:
        token = c.post("/v1/sessions").json()["token"]
    with _open(server, leaked["key"]) as by_key, _open(server, token) as by_token, \
            _open(server, kept["key"]) as other:
        time.sleep(3 * CHECK_S)  # a few checks pass while the key is valid
        other.send(json.dumps({"type": "ping"}))
        assert json.loads(other.recv(timeout=10))["type"] == "pong"
        with server.client(ADMIN_KEY) as c:
            assert c.delete(f"/v1/keys/{leaked['id']}").status_code == 200
        for ws in (by_key, by_token):
            msg, code = _closed_with(ws)
            assert code == 1008
            assert msg["code"] == "unauthorized" and "revoked" in msg["message"]
        # another key's stream goes on
        time.sleep(3 * CHECK_S)
        other.send(json.dumps({"type": "ping"}))
        assert json.loads(other.recv(timeout=10))["type"] == "pong"
