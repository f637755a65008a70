"""API keys (stored as sha256), scopes as FastAPI dependencies, per-key rate limits."""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.access.models import ApiKey, RateCounter
from service.db.base import utcnow
from service.errors import Forbidden, RateLimited, ServiceError, Unauthorized

log = logging.getLogger(__name__)
REDIS_RETRY_S = 10.0

Scope = Literal["kiosk", "analyst", "admin", "demo"]
SCOPES: tuple[str, ...] = ("kiosk", "analyst", "admin", "demo")

# Which held scopes satisfy a required one. admin can do everything; the public demo key
# may try on and post its own events (what "kiosk" guards) but nothing else.
SATISFIED_BY: dict[str, frozenset[str]] = {
    "kiosk": frozenset({"kiosk", "demo", "admin"}),
    "demo": frozenset({"demo", "kiosk", "admin"}),
    "analyst": frozenset({"analyst", "admin"}),
    "admin": frozenset({"admin"}),
}


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode("utf-8")).hexdigest()


def generate_key() -> str:
    return "tk_" + secrets.token_urlsafe(24)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller, detached from any DB session."""

    key_id: int
    name: str
    scopes: frozenset[str]
    rate_limit_per_minute: int

    @property
    def is_demo(self) -> bool:
        return self.scopes == frozenset({"demo"})

    def has(self, scope: str) -> bool:
        return bool(self.scopes & SATISFIED_BY.get(scope, frozenset({scope})))


# -- key storage ----------------------------------------------------------------------------
def authenticate_key(session: Session, raw_key: str) -> ApiKey | None:
    """The active ApiKey whose hash matches raw_key, or None (unknown, empty or revoked)."""
    if not raw_key:
        return None
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(raw_key)))
    if key is None or key.revoked_at is not None:
        return None
    return key


def create_key(
    session: Session,
    name: str,
    scopes: list[str] | tuple[str, ...],
    *,
    raw_key: str | None = None,
    rate_limit_per_minute: int | None = None,
) -> tuple[ApiKey, str]:
    """Store a new key; returns (row, raw key). The raw key is not kept anywhere."""
    bad = sorted(set(scopes) - set(SCOPES))
    if bad or not scopes:
        raise ServiceError(f"scopes must be a non-empty subset of {list(SCOPES)}; got {bad}")
    raw = raw_key or generate_key()
    row = ApiKey(
        name=name,
        key_hash=hash_key(raw),
        prefix=raw[:8],
        scopes=" ".join(sorted(set(scopes))),
        rate_limit_per_minute=rate_limit_per_minute,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row, raw


def revoke_key(session: Session, key_id: int) -> ApiKey | None:
    row = session.get(ApiKey, key_id)
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


def ensure_key(session: Session, name: str, raw_key: str, scopes: list[str]) -> ApiKey:
    """Create raw_key with scopes unless a key with that hash exists (start-up bootstrap).

    Replicas start concurrently, so a unique-constraint race is expected and tolerated.
    """
    existing = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(raw_key)))
    if existing is not None:
        return existing
    try:
        with session.begin_nested():
            row, _ = create_key(session, name, scopes, raw_key=raw_key)
        return row
    except Exception:  # another replica inserted it first
        existing = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(raw_key)))
        if existing is None:
            raise
        return existing


def bootstrap_keys(session: Session, demo_key: str | None, admin_key: str | None) -> None:
    if demo_key:
        ensure_key(session, "public demo", demo_key, ["demo"])
    if admin_key:
        ensure_key(session, "bootstrap admin", admin_key, ["admin"])


# -- rate limits ----------------------------------------------------------------------------
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
        self._dialect = engine.dialect.name
        self._redis_retry_at = 0.0  # after a Redis failure, skip it until then

    def hit(self, bucket: str, now: float | None = None) -> tuple[int, int]:
        """Count one request; returns (count in this window, seconds until it resets)."""
        now = time.time() if now is None else now
        window = int(now // self.window_s) * self.window_s
        reset = window + self.window_s - int(now)
        if self.redis is not None and time.monotonic() >= self._redis_retry_at:
            key = f"{self.prefix}rl:{bucket}:{window}"
            try:
                pipe = self.redis.pipeline()
                pipe.incr(key)
                pipe.expire(key, self.window_s * 2)
                count, _ = pipe.execute()
                return int(count), reset
            except Exception as exc:  # Redis down: keep limiting through the shared DB
                log.warning(
                    "rate limiter: Redis failed (%s); counting in the database for %.0f s",
                    exc,
                    REDIS_RETRY_S,
                )
                self._redis_retry_at = time.monotonic() + REDIS_RETRY_S
        return self._hit_db(bucket, window), reset

    def _hit_db(self, bucket: str, window: int) -> int:
        dialect = postgresql if self._dialect == "postgresql" else sqlite
        stmt = dialect.insert(RateCounter).values(bucket=bucket, window_start=window, count=1)
        stmt = stmt.on_conflict_do_update(
            index_elements=[RateCounter.bucket, RateCounter.window_start],
            set_={"count": RateCounter.count + 1},
        ).returning(RateCounter.count)
        # Its own short transaction: a request that later fails must still count.
        with self.engine.begin() as conn:
            count = conn.execute(stmt).scalar_one()
            if count == 1:  # first hit of a window: forget this key's older windows
                conn.execute(
                    RateCounter.__table__.delete().where(
                        RateCounter.bucket == bucket, RateCounter.window_start < window
                    )
                )
        return int(count)

    def check(self, principal: Principal) -> None:
        limit = principal.rate_limit_per_minute
        if limit <= 0:
            return
        count, reset = self.hit(f"key:{principal.key_id}")
        if count > limit:
            raise RateLimited(
                f"rate limit of {limit} requests per minute exceeded for this key",
                detail={"limit": limit, "retry_after_s": reset},
            )


# -- dependencies ---------------------------------------------------------------------------
def raw_key_from_headers(request: Any) -> str | None:
    auth = request.headers.get("authorization")
    if auth:
        kind, _, value = auth.partition(" ")
        if kind.lower() == "bearer" and value.strip():
            return value.strip()
    return request.headers.get("x-api-key") or None


def _principal(row: ApiKey, settings: Any) -> Principal:
    scopes = row.scope_set
    default = settings.rate_limit_per_minute
    if scopes == frozenset({"demo"}) and settings.demo_rate_limit_per_minute:
        default = settings.demo_rate_limit_per_minute
    limit = row.rate_limit_per_minute if row.rate_limit_per_minute is not None else default
    return Principal(key_id=row.id, name=row.name, scopes=scopes, rate_limit_per_minute=limit)


def authenticate_sync(app: Any, raw_key: str | None, scope: str) -> Principal:
    """Look the key up, check the scope and count it against the key's rate limit.

    Blocking (DB/Redis); call from a thread. Raises Unauthorized, Forbidden or RateLimited.
    """
    if not raw_key:
        raise Unauthorized("missing API key: send 'Authorization: Bearer KEY' or 'X-API-Key'")
    with app.state.sessionmaker() as session:
        row = authenticate_key(session, raw_key)
        if row is None:
            raise Unauthorized("unknown or revoked API key")
        principal = _principal(row, app.state.settings)
    if not principal.has(scope):
        raise Forbidden(
            f"this key lacks the {scope!r} scope", detail={"scopes": sorted(principal.scopes)}
        )
    app.state.rate_limiter.check(principal)
    return principal


def require_scope(scope: str) -> Callable[..., Any]:
    """Dependency: the caller's Principal, holding `scope` (or one that implies it)."""
    if scope not in SATISFIED_BY:
        raise ValueError(f"unknown scope {scope!r}")

    async def dependency(request: Request) -> Principal:
        raw = raw_key_from_headers(request)
        principal = await run_in_threadpool(authenticate_sync, request.app, raw, scope)
        request.state.principal = principal
        return principal

    dependency.__name__ = f"require_{scope}"
    return dependency


KioskDep = Annotated[Principal, Depends(require_scope("kiosk"))]
AnalystDep = Annotated[Principal, Depends(require_scope("analyst"))]
AdminDep = Annotated[Principal, Depends(require_scope("admin"))]
