"""The per-principal stream cap shared by replicas: leases in SQLite, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import Engine, text
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from service.db.engine import make_engine
from service.db.migrate import upgrade
from service.tryon.stream_leases import StreamLeases, stream_lease
from tests.service.harness import LiveServer, free_port, make_settings, wait_for

REDIS_DB = 15  # as tests/service/test_replicas.py: keys under a private prefix, deleted after
T0 = 1_000_000.0  # a fixed clock: expiry is tested by passing `now`, not by sleeping
TTL = 30.0
P = "key:7"


@pytest.fixture(scope="module")
def engines(db_url: str) -> Iterator[tuple[Engine, Engine]]:
    """Two engines on one migrated database: two replicas' connection pools."""
    first, second = make_engine(db_url), make_engine(db_url)
    upgrade(first)
    yield first, second
    first.dispose()
    second.dispose()


@pytest.fixture(scope="module")
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    yield client
    client.close()


@pytest.fixture()
def prefix(redis_client: redis.Redis) -> Iterator[str]:
    p = f"tryon-test-{uuid.uuid4().hex[:10]}:"
    yield p
    for k in redis_client.scan_iter(f"{p}*"):
        redis_client.delete(k)


@pytest.fixture(autouse=True)
def empty_table(engines: tuple[Engine, Engine]) -> None:
    with engines[0].begin() as conn:
        conn.execute(text("DELETE FROM stream_leases"))


def rows(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            text("SELECT principal, lease_id, expires_at FROM stream_leases ORDER BY expires_at"))]


@pytest.fixture(params=["database", "redis"])
def replicas(request: pytest.FixtureRequest, engines: tuple[Engine, Engine],
             redis_client: redis.Redis, prefix: str) -> tuple[StreamLeases, StreamLeases]:
    """Two replicas' lease stores, cap 2: on the shared database, or on the shared Redis."""
    client = redis_client if request.param == "redis" else None
    return (StreamLeases(engines[0], client, prefix=prefix, cap=2, ttl_s=TTL),
            StreamLeases(engines[1], client, prefix=prefix, cap=2, ttl_s=TTL))


class TestSharedCap:
    def test_cap_holds_across_replicas_and_release_frees_a_slot(
        self, replicas: tuple[StreamLeases, StreamLeases]
    ) -> None:
        a, b = replicas
        first = a.acquire(P, now=T0)
        second = b.acquire(P, now=T0 + 1)
        assert first is not None and second is not None
        assert a.acquire(P, now=T0 + 2) is None and b.acquire(P, now=T0 + 2) is None
        assert b.acquire("key:8", now=T0 + 2) is not None  # another key has its own cap
        a.release(first)
        assert a.held(P, now=T0 + 3) == 1
        assert b.acquire(P, now=T0 + 3) is not None  # the freed slot, from the other replica
        assert a.acquire(P, now=T0 + 3) is None

    def test_an_expired_lease_frees_its_slot(
        self, replicas: tuple[StreamLeases, StreamLeases]
    ) -> None:
        a, b = replicas  # a "crashes" holding both leases: it never renews nor releases
        assert a.acquire(P, now=T0) is not None and a.acquire(P, now=T0 + 5) is not None
        assert b.acquire(P, now=T0 + TTL - 1) is None
        assert b.acquire(P, now=T0 + TTL + 1) is not None  # the first lease lapsed
        assert b.acquire(P, now=T0 + TTL + 2) is None  # the second has not yet
        assert b.held(P, now=T0 + TTL + 2) == 2

    def test_renewal_keeps_a_lease(self, replicas: tuple[StreamLeases, StreamLeases]) -> None:
        a, b = replicas
        kept = a.acquire(P, now=T0)
        assert kept is not None and a.acquire(P, now=T0) is not None
        a.renew(kept, now=T0 + 20)  # heartbeats push the expiry on
        a.renew(kept, now=T0 + 40)
        assert b.acquire(P, now=T0 + 50) is not None  # only the unrenewed one lapsed
        assert b.acquire(P, now=T0 + 50) is None
        a.release(kept)
        a.renew(kept, now=T0 + 51)  # a heartbeat racing the close writes nothing back
        assert b.held(P, now=T0 + 51) == 1

    def test_two_replicas_racing_for_the_last_slots(
        self, replicas: tuple[StreamLeases, StreamLeases]
    ) -> None:
        a, b = replicas
        barrier = threading.Barrier(8)
        got: list[bool] = []

        def race(store: StreamLeases) -> None:
            barrier.wait(10)
            got.append(store.acquire(P, now=T0) is not None)

        threads = [threading.Thread(target=race, args=(a if i % 2 else b,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(got) == [False] * 6 + [True] * 2
        assert a.held(P, now=T0) == 2


class TestWhereLeasesLive:
    def test_database_rows_hold_the_principal_and_a_random_id(
        self, engines: tuple[Engine, Engine]
    ) -> None:
        a = StreamLeases(engines[0], cap=2, ttl_s=TTL)
        lease = a.acquire("session:nonce-1", now=T0)
        assert lease is not None
        assert rows(engines[1]) == [("session:nonce-1", lease.lease_id, T0 + TTL)]
        a.renew(lease, now=T0 + 10)
        assert rows(engines[1]) == [("session:nonce-1", lease.lease_id, T0 + 10 + TTL)]
        a.release(lease)
        assert rows(engines[1]) == []

    def test_expired_rows_of_every_principal_are_swept(
        self, engines: tuple[Engine, Engine]
    ) -> None:
        a = StreamLeases(engines[0], cap=2, ttl_s=TTL)
        for i in range(3):  # session tokens that never come back
            assert a.acquire(f"session:gone-{i}", now=T0) is not None
        b = StreamLeases(engines[1], cap=2, ttl_s=TTL)  # a later replica's first lease
        kept = b.acquire(P, now=T0 + TTL + 1)
        assert kept is not None
        assert [r[0] for r in rows(engines[0])] == [P]

    def test_redis_holds_a_sorted_set_per_principal_and_no_rows(
        self, engines: tuple[Engine, Engine], redis_client: redis.Redis, prefix: str
    ) -> None:
        a = StreamLeases(engines[0], redis_client, prefix=prefix, cap=2, ttl_s=TTL)
        lease = a.acquire(P, now=T0)
        assert lease is not None and lease.in_redis and not lease.in_db
        key = f"{prefix}streams:{P}"
        assert redis_client.zrange(key, 0, -1, withscores=True) == [
            (lease.lease_id.encode(), T0 + TTL)
        ]
        assert 0 < redis_client.ttl(key) <= 2 * TTL  # the key goes too, once its leases have
        assert rows(engines[0]) == []
        a.release(lease)
        assert redis_client.zcard(key) == 0


class TestRedisOutage:
    def test_a_failing_redis_falls_back_to_the_shared_database(
        self, engines: tuple[Engine, Engine], caplog: pytest.LogCaptureFixture
    ) -> None:
        dead = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5,
                           socket_timeout=0.5, retry=Retry(NoBackoff(), 0))
        a = StreamLeases(engines[0], dead, prefix="unused:", cap=2, ttl_s=TTL)
        b = StreamLeases(engines[1], cap=2, ttl_s=TTL)  # a replica counting in the database
        with caplog.at_level(logging.WARNING, logger="service.tryon.stream_leases"):
            lease = a.acquire(P, now=T0)
        assert lease is not None and lease.in_db and not lease.in_redis
        assert any("Redis failed" in r.getMessage() for r in caplog.records)
        assert b.acquire(P, now=T0) is not None
        assert a.acquire(P, now=T0) is None  # the cap still holds, through the database
        a.renew(lease, now=T0 + 20)
        assert rows(engines[0])[-1][1:] == (lease.lease_id, T0 + 20 + TTL)
        a.release(lease)
        assert b.acquire(P, now=T0 + 21) is not None
        dead.close()


class TestHeartbeat:
    def test_an_open_stream_keeps_its_lease_past_the_ttl_and_gives_it_back(
        self, engines: tuple[Engine, Engine]
    ) -> None:
        store = StreamLeases(engines[0], cap=1, ttl_s=0.6, heartbeat_s=0.1)

        async def scenario() -> tuple[bool, bool, int]:
            async with stream_lease(store, P) as held:
                await asyncio.sleep(1.2)  # twice the ttl: only the heartbeat keeps it
                alive = store.held(P)
                async with stream_lease(store, P) as second:
                    refused = not second
            return held and refused, alive == 1, store.held(P)

        assert asyncio.run(scenario()) == (True, True, 0)
        assert rows(engines[0]) == []

    def test_no_cap_takes_no_lease(self, engines: tuple[Engine, Engine]) -> None:
        store = StreamLeases(engines[0], cap=0)

        async def scenario() -> list[bool]:
            async with stream_lease(store, P) as one, stream_lease(store, P) as two:
                return [one, two, bool(rows(engines[0]))]

        assert asyncio.run(scenario()) == [True, True, False]


def _open(server: LiveServer, key: str) -> ClientConnection:
    return connect(f"{server.ws_url}/v1/tryon/stream", open_timeout=30,
                   additional_headers={"X-API-Key": key})


def _first(ws: ClientConnection) -> dict[str, Any]:
    return dict(json.loads(ws.recv(timeout=30)))


class TestTwoAppsOnOneDatabase:
    def test_the_third_stream_of_a_key_is_refused_on_either_replica(
        self, db_url: str, engines: tuple[Engine, Engine], tmp_path: Path
    ) -> None:
        for i in range(2):
            (tmp_path / f"r{i}").mkdir()
        settings = [make_settings(tmp_path / f"r{i}", database_url=db_url,
                                  max_streams_per_principal=2) for i in range(2)]
        with LiveServer(settings[0]) as one, LiveServer(settings[1]) as two, \
                contextlib.ExitStack() as held:
            key = one.kiosk_key  # made on one, known to both (one database)
            for server in (one, two):
                assert _first(held.enter_context(_open(server, key)))["type"] == "ready"
            for server in (two, one):
                with _open(server, key) as ws:
                    msg = _first(ws)
                    with pytest.raises(ConnectionClosed) as closed:
                        ws.recv(timeout=10)
                assert msg["code"] == "too_many_streams"
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
            assert {r[0] for r in rows(engines[0])} == {f"key:{key_id(engines[0], key)}"}
            held.close()  # both streams end: their leases go, on both replicas

            def admitted() -> bool:
                with _open(two, key) as ws:
                    return _first(ws)["type"] == "ready"

            assert wait_for(admitted, timeout_s=20, interval_s=0.2)


def key_id(engine: Engine, raw: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT id FROM api_keys WHERE prefix = :p"),
                                {"p": raw[:8]}).scalar_one())
