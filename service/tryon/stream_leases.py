"""Per-principal stream leases shared by every replica (Redis, else the database), with expiry."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Connection, Engine, func, select, text

from service.db.dml import table_of
from service.db.upsert import insert_for
from service.redis_fallback import RedisFallback
from service.tryon.models import StreamLease

if TYPE_CHECKING:  # Redis is optional
    from redis import Redis

log = logging.getLogger(__name__)

# Expired rows of principals that never come back (a crashed replica's session tokens) are
# deleted at most this often; a returning principal's own expired rows go at once.
SWEEP_EVERY_S = 60.0
# PostgreSQL advisory locks taken with two int4 keys are a key space apart from the one-bigint
# locks of migrations and the lake writer; this first key names the stream leases ("stre").
PG_LOCK_NAMESPACE = 0x73747265

# Atomic in Redis: drop expired leases, count the live ones, add ours if under the cap. One
# script, so two replicas cannot both see cap - 1 leases and both take the last slot.
# KEYS[1]: the principal's sorted set (lease id -> expiry). ARGV: now, cap, expiry, lease id,
# key ttl (seconds).
ACQUIRE_LUA = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


@dataclass
class Lease:
    """One open stream's lease, and where it was written (so release finds every copy)."""

    principal: str
    lease_id: str
    in_redis: bool = False
    in_db: bool = False
    released: bool = False
    # A heartbeat's renewal racing the release must not write the lease back after it.
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)


def pg_lock_key(principal: str) -> int:
    """The principal's advisory-lock key: a signed int4 (collisions only serialise two)."""
    return int.from_bytes(hashlib.sha256(principal.encode()).digest()[:4], "big", signed=True)


def lock_principal(conn: Connection, principal: str) -> None:
    """Serialise taking one principal's slots across replicas until this transaction ends."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            text("SELECT pg_advisory_xact_lock(CAST(:ns AS integer), CAST(:k AS integer))"),
            {"ns": PG_LOCK_NAMESPACE, "k": pg_lock_key(principal)},
        )
    elif conn.dialect.name == "sqlite":
        # The write lock before the count, not at the insert: a deferred transaction that
        # counted first could be beaten to the last slot by another process.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class StreamLeases:
    """Each key's or session token's open streams, counted by every replica together.

    A stream takes a lease when it opens (refused at `cap` live leases), renews it every
    `heartbeat_s` and releases it on close; a lease not renewed for `ttl_s` expires, so a
    crashed replica's streams stop counting by themselves. Leases live in Redis when a client
    is given (a sorted set per principal, scored by expiry, changed atomically by a script),
    else in the database's stream_leases (the principal's rows counted under a per-principal
    lock). While Redis fails, leases are taken and renewed in the database for REDIS_RETRY_S
    (service.redis_fallback) at a time; the two stores are not summed, so around an outage a
    principal may briefly hold up to twice the cap, until renewals have moved the open streams over.
    The principal is Principal.subject ("key:<id>" or "session:<nonce>"): no shopper id.
    All methods block (network and database): call them from a thread.
    """

    def __init__(
        self,
        engine: Engine,
        redis: Redis | None = None,
        prefix: str = "tryon:",
        cap: int = 0,
        ttl_s: float = 30.0,
        heartbeat_s: float = 10.0,
    ) -> None:
        self.engine = engine
        self.redis = redis
        self.prefix = prefix
        self.cap = cap  # 0 = no cap: no lease is taken
        self.ttl_s = ttl_s
        self.heartbeat_s = heartbeat_s
        self._acquire_script = redis.register_script(ACQUIRE_LUA) if redis is not None else None
        self._fallback = RedisFallback(redis, log, "stream leases", "leasing in the database")
        self._sweep_at = 0.0

    # -- the API -------------------------------------------------------------------------
    def acquire(self, principal: str, now: float | None = None) -> Lease | None:
        """A new lease, or None when the principal already holds `cap` live ones."""
        now = time.time() if now is None else now
        lease = Lease(principal, uuid.uuid4().hex)
        if self._fallback.up():
            try:
                lease.in_redis = self._acquire_redis(lease, now)
                return lease if lease.in_redis else None
            except Exception as exc:  # Redis down: keep the cap through the shared DB
                self._fallback.failed(exc)
        self._sweep(now)
        lease.in_db = self._acquire_db(lease, now)
        return lease if lease.in_db else None

    def renew(self, lease: Lease, now: float | None = None) -> None:
        """Push the lease's expiry ttl_s past now. One that lapsed meanwhile is written again
        (its stream is still open, so it counts). A failure is logged, never raised: the
        stream goes on, and its lease lapses after ttl_s unless a later renewal succeeds."""
        now = time.time() if now is None else now
        with lease.lock:
            if lease.released:
                return
            try:
                self._renew(lease, now)
            except Exception as exc:
                log.warning("stream lease of %s not renewed: %s", lease.principal, exc)

    def release(self, lease: Lease) -> None:
        """Give the slot back (every copy); a copy that cannot be deleted expires by itself."""
        with lease.lock:
            lease.released = True
            if lease.in_redis and self._fallback.up():
                try:
                    assert self.redis is not None
                    self.redis.zrem(self._key(lease.principal), lease.lease_id)
                except Exception as exc:
                    self._fallback.failed(exc)
            if lease.in_db:
                try:
                    self._release_db(lease)
                except Exception as exc:
                    log.warning("stream lease of %s not released: %s", lease.principal, exc)

    def held(self, principal: str, now: float | None = None) -> int:
        """The principal's live leases in the store in use now (Redis, else the database)."""
        now = time.time() if now is None else now
        if self._fallback.up():
            assert self.redis is not None
            return int(self.redis.zcount(self._key(principal), f"({now}", "+inf"))
        t = table_of(StreamLease)
        stmt = select(func.count()).where(t.c.principal == principal, t.c.expires_at > now)
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    # -- Redis ---------------------------------------------------------------------------
    def _key(self, principal: str) -> str:
        return f"{self.prefix}streams:{principal}"

    def _key_ttl_s(self) -> int:
        # Every write sets it, and no member outlives the latest write by more than ttl_s:
        # the key outlives its leases, and vanishes once its principal's streams are gone.
        return math.ceil(self.ttl_s * 2)

    def _acquire_redis(self, lease: Lease, now: float) -> bool:
        assert self._acquire_script is not None
        args: list[Any] = [now, self.cap, now + self.ttl_s, lease.lease_id, self._key_ttl_s()]
        return bool(self._acquire_script(keys=[self._key(lease.principal)], args=args))

    def _renew_redis(self, lease: Lease, now: float) -> None:
        assert self.redis is not None
        key = self._key(lease.principal)
        pipe = self.redis.pipeline()
        pipe.zadd(key, {lease.lease_id: now + self.ttl_s})
        pipe.expire(key, self._key_ttl_s())
        pipe.execute()

    def _renew(self, lease: Lease, now: float) -> None:
        if self._fallback.up():
            try:
                self._renew_redis(lease, now)
                lease.in_redis = True
                return
            except Exception as exc:
                self._fallback.failed(exc)
        self._renew_db(lease, now)
        lease.in_db = True

    # -- the database --------------------------------------------------------------------
    def _acquire_db(self, lease: Lease, now: float) -> bool:
        t = table_of(StreamLease)
        mine = t.c.principal == lease.principal
        with self.engine.connect() as conn:
            lock_principal(conn, lease.principal)
            conn.execute(t.delete().where(mine, t.c.expires_at <= now))
            held = conn.execute(select(func.count()).select_from(t).where(mine)).scalar_one()
            taken = held < self.cap
            if taken:
                conn.execute(
                    t.insert().values(
                        lease_id=lease.lease_id,
                        principal=lease.principal,
                        expires_at=now + self.ttl_s,
                    )
                )
            conn.commit()
        return taken

    def _renew_db(self, lease: Lease, now: float) -> None:
        t = table_of(StreamLease)
        stmt = insert_for(self.engine, t).values(
            lease_id=lease.lease_id, principal=lease.principal, expires_at=now + self.ttl_s
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.lease_id], set_={"expires_at": stmt.excluded.expires_at}
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)

    def _release_db(self, lease: Lease) -> None:
        t = table_of(StreamLease)
        with self.engine.begin() as conn:
            conn.execute(t.delete().where(t.c.lease_id == lease.lease_id))

    def _sweep(self, now: float) -> None:
        """Every principal's expired rows, at most every SWEEP_EVERY_S (best effort)."""
        if now < self._sweep_at:
            return
        self._sweep_at = now + SWEEP_EVERY_S
        t = table_of(StreamLease)
        try:
            with self.engine.begin() as conn:
                conn.execute(t.delete().where(t.c.expires_at <= now))
        except Exception as exc:  # the next sweep will do
            log.warning("stream leases: expired rows not swept: %s", exc)


async def _renew_every(leases: StreamLeases, lease: Lease) -> None:
    while True:
        await asyncio.sleep(leases.heartbeat_s)
        await run_in_threadpool(leases.renew, lease)


@contextlib.asynccontextmanager
async def stream_lease(leases: StreamLeases, principal: str) -> AsyncIterator[bool]:
    """Hold a lease on the principal's cap while the block runs, renewed by a heartbeat task.

    Yields False, holding nothing, when the principal is at its cap; True otherwise (with no
    cap, without taking a lease). The blocking store is called off the event loop.
    """
    if leases.cap <= 0:
        yield True
        return
    lease = await run_in_threadpool(leases.acquire, principal)
    if lease is None:
        yield False
        return
    heartbeat = asyncio.create_task(_renew_every(leases, lease))
    try:
        yield True
    finally:
        heartbeat.cancel()
        with contextlib.suppress(BaseException):
            await heartbeat
        await run_in_threadpool(leases.release, lease)
