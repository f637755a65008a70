"""A 30-s PostgreSQL outage under live ingestion: JSON 503s with Retry-After, zero lost.

A PRIVATE PostgreSQL server (initdb + pg_ctl as the `postgres` OS user, on its own port and
socket directory) that this test stops and starts; the real app under uvicorn on it. During
the outage POST /v1/events, Segment's /v1/batch and a live WebSocket stream session keep
sending. Clients retry on 503 like an SDK; every acknowledged event and every stream event
(spooled meanwhile) must be stored exactly once.
"""

from __future__ import annotations

import base64
import glob
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.service.harness import LiveServer, create_keys, free_port, make_settings, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

OUTAGE_S = 30.0
PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))


def _as_postgres(*cmd: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["runuser", "-u", "postgres", "--", *cmd], check=True,
                          capture_output=True, text=True, timeout=timeout)


class PrivatePostgres:
    def __init__(self, root: Path) -> None:
        self.bin = Path(PG_BIN[-1])
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/tryon"

    def init(self) -> None:
        _as_postgres(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust",
                     "-U", "postgres", "--no-sync")
        self.start()
        import psycopg

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres",
                             autocommit=True) as conn:
            conn.execute("CREATE DATABASE tryon")

    def start(self) -> None:
        _as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-l",
                     str(self.root / "pg.log"), "-o",
                     f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
                     " -c fsync=off", "start")

    def stop(self) -> None:
        _as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-m", "fast", "stop")


@pytest.fixture
def pg() -> Iterator[PrivatePostgres]:
    if not PG_BIN or os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("needs Debian's PostgreSQL binaries and root (runuser -u postgres)")
    root = Path(tempfile.mkdtemp(prefix="tryon-pg-"))
    shutil.chown(root, "postgres", "postgres")
    server = PrivatePostgres(root)
    try:
        server.init()
        yield server
    finally:
        subprocess.run(["runuser", "-u", "postgres", "--", str(server.bin / "pg_ctl"), "-D",
                        str(server.data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


class Producer(threading.Thread):
    """Posts batches until told to stop; a 503 batch is retried until acknowledged."""

    def __init__(self, url: str, kind: str, key: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.url, self.kind, self.key, self.stop_at = url, kind, key, stop
        self.acked: set[str] = set()
        self.unavailable = 0
        self.bad: list[str] = []

    def _batch(self) -> tuple[list[dict[str, Any]], list[str]]:
        ids = [f"{self.kind}-{uuid.uuid4().hex}" for _ in range(4)]
        if self.kind == "api":
            return [{"message_id": m, "event": "Frame Applied", "anonymous_id": "outage-api",
                     "channel": "kiosk", "properties": {"sku": "G-1"}} for m in ids], ids
        return [{"type": "track", "messageId": m, "event": "Try-On Dwell",
                 "anonymousId": "outage-seg", "properties": {"sku": "G-2", "dwell_ms": 900}}
                for m in ids], ids

    def _send(self, client: httpx.Client, batch: list[dict[str, Any]]) -> httpx.Response:
        if self.kind == "api":
            return client.post("/v1/events", json={"events": batch},
                               headers={"Authorization": f"Bearer {self.key}"})
        auth = "Basic " + base64.b64encode(f"{self.key}:".encode()).decode()
        return client.post("/v1/batch", json={"batch": batch}, headers={"Authorization": auth})

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self.stop_at.is_set():
                batch, ids = self._batch()
                while True:  # like an SDK: the same batch again until it is taken
                    r = self._send(client, batch)
                    if r.status_code == 200:
                        self.acked.update(ids)
                        break
                    ok_503 = (r.status_code == 503 and "retry-after" in r.headers
                              and r.headers.get("content-type", "").startswith("application/json")
                              and r.json()["error"]["code"] == "database_unavailable")
                    if not ok_503:
                        self.bad.append(f"{r.status_code} {r.headers.get('content-type')} "
                                        f"{r.text[:200]}")
                        return
                    self.unavailable += 1
                    time.sleep(min(float(r.headers["retry-after"]), 1.0))
                time.sleep(0.1)


def test_a_30s_database_outage_loses_nothing(pg: PrivatePostgres, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, database_url=pg.url,
                             event_spool_dir=str(tmp_path / "spool"),
                             event_flush_interval_s=0.2, event_replay_max_backoff_s=2.0,
                             stream_idle_timeout_s=300.0)
    with LiveServer(settings) as server:
        rt = server.app.state.runtime
        keys = create_keys(rt.sessions)
        stop = threading.Event()
        producers = [Producer(server.url, kind, keys["kiosk"], stop) for kind in ("api", "seg")]
        ws = connect(f"{server.ws_url}/v1/tryon/stream?anonymous_id=outage-ws&session_id="
                     f"outage-{uuid.uuid4().hex[:8]}", additional_headers={"X-API-Key":
                     keys["kiosk"]}, open_timeout=30)
        session_id = json.loads(ws.recv(timeout=30))["session_id"]
        snapshots = 0

        def stream_some(n: int) -> None:
            nonlocal snapshots
            for i in range(n):
                ws.send(json.dumps({"type": "shade", "shade": ("ruby", "nude")[i % 2]}))
                ws.send(json.dumps({"type": "snapshot"}))
                while json.loads(ws.recv(timeout=30))["type"] != "snapshot":
                    pass
                snapshots += 1
                time.sleep(0.2)

        for p in producers:
            p.start()
        stream_some(5)
        pg.stop()
        t_down = time.monotonic()
        spooled_seen = 0
        while time.monotonic() - t_down < OUTAGE_S:
            stream_some(2)
            spooled_seen = max(spooled_seen, rt.event_batcher.spooled)
            # Every probe of a DB route meanwhile: JSON 503 + Retry-After, never a 500.
            r = httpx.get(f"{server.url}/v1/events/schemas", timeout=10)
            assert r.status_code == 200  # needs no database
            r = httpx.get(f"{server.url}/v1/products", timeout=10,
                          headers={"X-API-Key": keys["kiosk"]})
            assert r.status_code == 503 and r.headers["retry-after"], r.text
            assert r.json()["error"]["code"] == "database_unavailable"
        pg.start()
        stream_some(3)
        stop.set()
        for p in producers:
            p.join(30)
        ws.send(json.dumps({"type": "end"}))
        with __import__("contextlib").suppress(Exception):
            while True:
                ws.recv(timeout=10)
        ws.close()
        assert wait_for(lambda: rt.event_batcher.spooled == 0, 30), rt.event_batcher.spooled

        for p in producers:
            assert not p.bad, (p.kind, p.bad[:3])
            assert p.unavailable > 0 and p.acked, (p.kind, p.unavailable, len(p.acked))
        assert spooled_seen > 0 and rt.event_batcher.replayed >= spooled_seen
        assert rt.event_batcher.dropped == 0

        from sqlalchemy import text

        with rt.engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT message_id, count(*) FROM events GROUP BY message_id")).all()
            snaps = conn.execute(text(
                "SELECT count(*) FROM events WHERE session_id = :s"
                " AND event = 'Snapshot Captured'"), {"s": session_id}).scalar_one()
        counts = dict(rows)
        acked = set().union(*(p.acked for p in producers))
        missing = acked - counts.keys()
        assert not missing, f"{len(missing)} acknowledged events lost"
        assert all(counts[m] == 1 for m in acked)
        assert snaps == snapshots, (snaps, snapshots)
        metrics = httpx.get(f"{server.url}/metrics").text
        assert "tryon_events_replayed_total" in metrics and "tryon_events_spooled 0.0" in metrics
