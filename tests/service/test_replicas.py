"""Scale-out: two uvicorn replicas (subprocesses) sharing PostgreSQL, then Redis for counters."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import create_engine, text

from service.settings import Settings
from tests.service.harness import (
    ADMIN_KEY,
    DEMO_KEY,
    ROOT,
    LiveServer,
    fresh_database,
    make_settings,
    wait_for,
)

REC_M = ROOT / "assets" / "models3d" / "frames" / "REC-M.glb"
REDIS_DB = 15

pytestmark = pytest.mark.postgres


@contextmanager
def replicas(settings: list[Settings], tmp: Path) -> Iterator[list[LiveServer]]:
    """The real service in one subprocess per Settings, all starting at once."""
    with ExitStack() as stack:
        started = []
        for i, one in enumerate(settings):
            r = LiveServer(one, process=True, log_path=tmp / f"replica{i}.log")
            stack.callback(r.stop)
            started.append(r)
        for r in started:  # launched together so their start-ups (migrations) overlap
            r.start_process()
        for r in started:
            assert wait_for(r.ready, timeout_s=120, interval_s=0.25), r.log()
        yield started


def _base_settings(pg_url: str, tmp: Path, **over: Any) -> Settings:
    return make_settings(tmp, database_url=pg_url, worker_threads=1, **over)


def away_from_minute_boundary(margin_s: float = 3.0) -> None:
    """Rate limits use fixed one-minute windows: start a burst well inside one window so
    the test checks the limit, not the clock (waits at most margin_s, rarely)."""
    left = 60.0 - time.time() % 60.0
    if left < margin_s:
        time.sleep(left + 0.05)


def limited_burst(a: LiveServer, b: LiveServer, limit: int) -> tuple[str, list[int]]:
    with a.client(ADMIN_KEY) as c:
        key = c.post("/v1/keys", json={"name": "fleet", "scopes": ["kiosk"],
                                       "rate_limit_per_minute": limit}).json()["key"]
    away_from_minute_boundary()
    codes = []
    with a.client(key) as ca, b.client(key) as cb:
        for i in range(limit + 4):  # alternate replicas: each sees only half the traffic
            codes.append((ca if i % 2 == 0 else cb).get("/v1/shades").status_code)
    return key, codes


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Two replicas counting in PostgreSQL and two counting in Redis, started together so
    their start-ups overlap (all four share one private PostgreSQL database)."""
    tmp = tmp_path_factory.mktemp("fleet")
    prefix = f"tryon-test-{uuid.uuid4().hex[:10]}:"
    r = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    try:
        with fresh_database("postgres", tmp) as url:
            pg = _base_settings(url, tmp)
            with_redis = _base_settings(url, tmp, redis_url=f"redis://127.0.0.1:6379/{REDIS_DB}",
                                        redis_prefix=prefix)
            with replicas([pg, pg, with_redis, with_redis], tmp) as started:
                yield {"pg": started[:2], "redis": started[2:], "prefix": prefix, "client": r,
                       "url": url}
    finally:
        for k in r.scan_iter(f"{prefix}*"):
            r.delete(k)
        r.close()


class TestTwoReplicasOnPostgres:
    def test_upload_on_one_served_by_other_and_limits_shared(
        self, fleet: dict[str, Any], shared_data: Path
    ) -> None:
        a, b = fleet["pg"]
        glb = REC_M.read_bytes()
        meta = ('{"sku":"FLEET-1","name":"Fleet Rect","style":"rectangular",'
                '"variants":[{"name":"black","frame_color":"#111111",'
                '"lens_tint":[0.9,0.9,1,0.2]}],"price":10,"lens_width_mm":53,'
                '"bridge_mm":18,"temple_mm":140,"frame_width_mm":137.3}')
        with a.client(ADMIN_KEY) as ca:
            up = ca.post("/v1/products", data={"metadata": meta},
                         files={"model": ("f.glb", glb, "model/gltf-binary")})
        assert up.status_code == 201, up.text
        photo = (shared_data / "faces" / "photos" / "obama.jpg").read_bytes()
        with b.client(b.kiosk_key) as cb:
            assert cb.get("/v1/products/FLEET-1").json()["source"] == "uploaded"
            assert cb.get("/v1/products/FLEET-1/model.glb").content == glb
            rendered = cb.post("/v1/tryon/render", content=photo,
                               headers={"Content-Type": "image/jpeg"},
                               params={"sku": "FLEET-1"})
        assert rendered.status_code == 200
        assert rendered.headers["x-tryon-applied"] == "true"

        key, codes = limited_burst(a, b, limit=6)
        assert codes[:6] == [200] * 6 and codes[6:] == [429] * 4, codes

        engine = create_engine(fleet["url"])
        with engine.connect() as conn:  # the counters really are in the shared database
            rows = conn.execute(text(
                "SELECT c.count FROM rate_counters c JOIN api_keys k "
                "ON c.bucket = 'key:' || k.id WHERE k.prefix = :p"), {"p": key[:8]}
            ).scalars().all()
        engine.dispose()
        assert rows == [10]


class TestTwoReplicasWithRedis:
    def test_rate_limit_counters_in_redis_hold_across_replicas(
        self, fleet: dict[str, Any]
    ) -> None:
        a, b = fleet["redis"]
        r, prefix = fleet["client"], fleet["prefix"]
        with a.client(DEMO_KEY) as c:
            assert c.get("/readyz").json()["checks"]["redis"] == "ok"
        _, codes = limited_burst(a, b, limit=5)
        assert codes[:5] == [200] * 5 and codes[5:] == [429] * 4, codes
        keys = [k.decode() for k in r.scan_iter(f"{prefix}rl:*")]
        assert keys and all(0 < r.ttl(k) <= 120 for k in keys)
        assert max(int(r.get(k) or 0) for k in keys) == 9
