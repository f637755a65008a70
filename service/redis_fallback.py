"""When to skip Redis for the database: after a failure, for REDIS_RETRY_S (shared stores)."""

from __future__ import annotations

import logging
import time
from typing import Any

REDIS_RETRY_S = 10.0


class RedisFallback:
    """Redis while it answers; after a failure the caller uses the shared database instead
    for REDIS_RETRY_S, so a dead Redis costs one failed call per period, not one per request
    (the rate limiter's counters, the stream leases)."""

    def __init__(self, redis: Any, log: logging.Logger, name: str, instead: str) -> None:
        self.redis = redis
        # The caller's logger and words: "rate limiter", "counting in the database".
        self._log, self._name, self._instead = log, name, instead
        self._retry_at = 0.0

    def up(self) -> bool:
        """Use Redis now: there is one and it has not failed in the last REDIS_RETRY_S."""
        return self.redis is not None and time.monotonic() >= self._retry_at

    def failed(self, exc: Exception) -> None:
        self._log.warning("%s: Redis failed (%s); %s for %.0f s", self._name, exc,
                          self._instead, REDIS_RETRY_S)
        self._retry_at = time.monotonic() + REDIS_RETRY_S
