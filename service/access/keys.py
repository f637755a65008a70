"""API keys (stored as sha256), scopes, and authenticating a raw key to a Principal."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.access.clients import client_address, parse_networks
from service.access.limits import RateLimiter
from service.access.models import ApiKey
from service.access.tokens import SessionTokens, is_session_token
from service.db.base import utcnow
from service.errors import Forbidden, ServiceError, Unauthorized, database_unavailable

log = logging.getLogger(__name__)

Scope = Literal["kiosk", "analyst", "admin", "demo"]
SCOPES: tuple[str, ...] = ("kiosk", "analyst", "admin", "demo")

# Which held scopes satisfy a required one. admin can do everything. "session" is held by
# session tokens only (never by a key): they try on and post their own shopper's events
# (what "kiosk" guards). The public demo key can only mint sessions (what "demo" guards).
SATISFIED_BY: dict[str, frozenset[str]] = {
    "kiosk": frozenset({"kiosk", "session", "admin"}),
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

    key_id: int  # a session token: the key that minted it
    name: str
    scopes: frozenset[str]
    rate_limit_per_minute: int
    # A session token's shopper (the only shopper it may act for) and its id (nonce).
    shopper_id: str | None = None
    token_id: str | None = None
    client: str | None = None  # the client address it came from, when known

    @property
    def is_demo(self) -> bool:
        return self.scopes == frozenset({"demo"})

    @property
    def is_session(self) -> bool:
        return "session" in self.scopes

    @property
    def subject(self) -> str:
        """What its own budget and stream cap count: the key, or the one session token."""
        return f"session:{self.token_id}" if self.token_id else f"key:{self.key_id}"

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
    scopes: Sequence[str],
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


# -- authentication -------------------------------------------------------------------------
class Authenticator:
    """Raw key or session token -> Principal: verify it, check the scope, count it against
    its budgets (its own; and the client address's, for the demo key and session tokens).

    Blocking (DB/Redis): call from a thread. Raises Unauthorized, Forbidden or RateLimited.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        limiter: RateLimiter,
        *,
        default_limit: int,
        demo_limit: int,
        tokens: SessionTokens | None = None,
        session_limit: int = 0,
        client_limit: int = 0,
        trusted_proxies: Sequence[str] = (),
    ) -> None:
        self._sessions = sessions
        self._limiter = limiter
        self._default_limit = default_limit
        self._demo_limit = demo_limit
        self.tokens = tokens
        self._session_limit = session_limit
        self._client_limit = client_limit
        self.trusted_proxies = parse_networks(trusted_proxies)

    def client_of(self, peer: str | None, headers: Mapping[str, str]) -> str:
        """The client address of a request (X-Forwarded-For only from a trusted proxy)."""
        return client_address(peer, headers, self.trusted_proxies)

    def _session_principal(self, raw: str) -> Principal:
        if self.tokens is None:
            raise Unauthorized("session tokens are not enabled")
        claims = self.tokens.verify(raw)
        # A token is signed, so it verifies without the database; but revoking the key that
        # minted it (a leaked kiosk key, the demo key rotated) must end its sessions now, not
        # at their expiry: one primary-key read, as a raw key costs its own lookup.
        if self._key_revoked(claims.key_id, "session token accepted"):
            raise Unauthorized("this session token's API key was revoked; start a new session")
        return Principal(
            key_id=claims.key_id,
            name="session",
            scopes=frozenset({"session"}),
            rate_limit_per_minute=self._session_limit,
            shopper_id=claims.shopper_id,
            token_id=claims.token_id,
        )

    def revoked(self, principal: Principal) -> bool:
        """Whether the key behind an authenticated principal (a session token's: the key
        that minted it) has been revoked or deleted since, for what outlives one request
        (an open stream)."""
        return self._key_revoked(principal.key_id, "open stream kept")

    def _key_revoked(self, key_id: int, when_unknown: str) -> bool:
        """One primary-key read: the key is revoked or gone. A database that cannot be
        reached answers False (logged with `when_unknown`): the signature and expiry of a
        token hold without it, so a try-on keeps working through an outage (budgets then
        count in Redis when configured) and a revocation takes effect once it answers."""
        try:
            with self._sessions() as session:
                row = session.get(ApiKey, key_id)
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            log.warning("%s without its key check: %s", when_unknown, exc)
            return False
        return row is None or row.revoked_at is not None

    def _principal(self, row: ApiKey) -> Principal:
        scopes = row.scope_set
        default = self._default_limit
        if scopes == frozenset({"demo"}) and self._demo_limit:
            default = self._demo_limit
        limit = row.rate_limit_per_minute if row.rate_limit_per_minute is not None else default
        return Principal(key_id=row.id, name=row.name, scopes=scopes, rate_limit_per_minute=limit)

    def authenticate(self, raw_key: str | None, scope: str, client: str | None = None) -> Principal:
        if not raw_key:
            raise Unauthorized("missing API key: send 'Authorization: Bearer KEY' or 'X-API-Key'")
        if is_session_token(raw_key):
            principal = self._session_principal(raw_key)
        else:
            with self._sessions() as session:
                row = authenticate_key(session, raw_key)
                if row is None:
                    raise Unauthorized("unknown or revoked API key")
                principal = self._principal(row)
        if client is not None:
            principal = replace(principal, client=client)
        if not principal.has(scope):
            what = "a session token" if principal.is_session else "this key"
            hint = ""
            if principal.is_demo:
                hint = " (the demo key only mints sessions: POST /v1/sessions)"
            raise Forbidden(
                f"{what} lacks the {scope!r} scope{hint}",
                detail={"scopes": sorted(principal.scopes)},
            )
        self.check_budgets(principal)
        return principal

    def check_budgets(self, principal: Principal) -> None:
        """Its own budget, then its client's (the public key and its sessions only)."""
        self._limiter.check(principal)
        if (principal.is_demo or principal.is_session) and principal.client is not None:
            self._limiter.check_bucket(
                f"client:{principal.client}", self._client_limit, "this client address"
            )
