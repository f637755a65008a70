"""Per-key rate limits in fixed one-minute windows, shared by every replica (Redis or the DB)."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from service.access.models import RateCounter
from service.db.dml import table_of
from service.db.upsert import insert_for
from service.errors import RateLimited
from service.redis_fallback import RedisFallback

if TYPE_CHECKING:
    from service.access.keys import Principal

log = logging.getLogger(__name__)


class RateLimiter:
    """Fixed one-minute windows per key, shared by every replica.

    Counters live in Redis (INCR + EXPIRE) when a client is given, else in the database
    (atomic INSERT .. ON CONFLICT DO UPDATE .. RETURNING on SQLite and PostgreSQL).
    """

    def __init__(
        self, engine: Engine, redis: Any = None, prefix: str = "tryon:", window_s: int = 60
    ) -> None:
        self.engine = engine
        self.redis = redis
        self.prefix = prefix
        self.window_s = window_s
        self._fallback = RedisFallback(redis, log, "rate limiter", "counting in the database")

    def hit(self, bucket: str, now: float | None = None) -> tuple[int, int]:
        """Count one request; returns (count in this window, seconds until it resets)."""
        now = time.time() if now is None else now
        window = int(now // self.window_s) * self.window_s
        reset = window + self.window_s - int(now)
        if self._fallback.up():
            key = f"{self.prefix}rl:{bucket}:{window}"
            try:
                pipe = self.redis.pipeline()
                pipe.incr(key)
                pipe.expire(key, self.window_s * 2)
                count, _ = pipe.execute()
                return int(count), reset
            except Exception as exc:  # Redis down: keep limiting through the shared DB
                self._fallback.failed(exc)
        return self._hit_db(bucket, window), reset

    def _hit_db(self, bucket: str, window: int) -> int:
        stmt = insert_for(self.engine, RateCounter.__table__).values(
            bucket=bucket, window_start=window, count=1
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[RateCounter.bucket, RateCounter.window_start],
            set_={"count": RateCounter.count + 1},
        ).returning(RateCounter.count)
        # Its own short transaction: a request that later fails must still count.
        with self.engine.begin() as conn:
            count: int = conn.execute(stmt).scalar_one()
            if count == 1:  # first hit of a window: forget this key's older windows
                conn.execute(
                    table_of(RateCounter)
                    .delete()
                    .where(RateCounter.bucket == bucket, RateCounter.window_start < window)
                )
        return int(count)

    def check(self, principal: Principal) -> None:
        """The principal's own budget: its key's, or its session token's."""
        what = "this session" if principal.token_id else "this key"
        self.check_bucket(principal.subject, principal.rate_limit_per_minute, what)

    def check_bucket(self, bucket: str, limit: int, what: str) -> None:
        """Count one request in `bucket`; RateLimited past `limit` per window (0 = none)."""
        if limit <= 0:
            return
        count, reset = self.hit(bucket)
        if count > limit:
            raise RateLimited(
                f"rate limit of {limit} requests per minute exceeded for {what}",
                detail={"limit": limit, "retry_after_s": reset},
            )
