"""Session tokens: short-lived, stateless, HMAC-SHA256 signed, one pseudonymous shopper each.

A token is `st_<payload>.<signature>` (both base64url): payload is compact JSON with the
shopper id (`s`), expiry in Unix seconds (`e`), the issuing key's id (`k`) and a random nonce
(`n`, the token's id for its own budget and stream cap). Any replica verifies it with the
shared secret; nothing is stored per token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import Engine, select

from service.access.models import AppSecret
from service.db.upsert import insert_for
from service.errors import Unauthorized

TOKEN_PREFIX = "st_"
SECRET_NAME = "session_hmac_v1"
MAX_TOKEN_CHARS = 1024


def is_session_token(raw: str) -> bool:
    return raw.startswith(TOKEN_PREFIX)


def new_shopper_id() -> str:
    """A pseudonymous id for an anonymous session (never derived from the client)."""
    return f"anon-{uuid.uuid4().hex}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class SessionClaims:
    shopper_id: str
    expires_at: int  # Unix seconds
    key_id: int  # the key that minted it
    token_id: str  # the nonce


class SessionTokens:
    """Mint and verify session tokens with one shared secret (blocking-free, pure CPU)."""

    def __init__(self, secret: bytes, ttl_s: int) -> None:
        if len(secret) < 16:
            raise ValueError("the session secret must be at least 16 bytes")
        self._secret = secret
        self.ttl_s = ttl_s

    def _sign(self, payload: str) -> str:
        mac = hmac.new(self._secret, b"st1." + payload.encode("ascii"), hashlib.sha256)
        return _b64(mac.digest())

    def mint(self, shopper_id: str, key_id: int, now: float | None = None) -> tuple[str, int]:
        """(token, expires_at in Unix seconds)."""
        expires = int(now if now is not None else time.time()) + self.ttl_s
        claims = {"s": shopper_id, "e": expires, "k": key_id, "n": secrets.token_urlsafe(12)}
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode("utf-8"))
        return f"{TOKEN_PREFIX}{payload}.{self._sign(payload)}", expires

    def verify(self, token: str, now: float | None = None) -> SessionClaims:
        """The token's claims; Unauthorized when forged, malformed or expired."""
        body = token[len(TOKEN_PREFIX) :] if is_session_token(token) else ""
        payload, _, sig = body.partition(".")
        if not payload or not sig or len(token) > MAX_TOKEN_CHARS:
            raise Unauthorized("malformed session token")
        if not hmac.compare_digest(sig, self._sign(payload)):
            raise Unauthorized("invalid session token")
        try:
            raw = json.loads(_unb64(payload))
            claims = SessionClaims(str(raw["s"]), int(raw["e"]), int(raw["k"]), str(raw["n"]))
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise Unauthorized("malformed session token") from None
        if claims.expires_at <= (now if now is not None else time.time()):
            raise Unauthorized(
                "session token expired; mint a new one (POST /v1/sessions)",
                detail={"expired": True},
            )
        return claims


def shared_secret(engine: Engine, configured: str = "") -> bytes:
    """The configured secret, else the database's: inserted once (insert-or-ignore, so
    replicas starting together agree on the first one) and read back (blocking)."""
    if configured:
        return configured.encode("utf-8")
    candidate = secrets.token_hex(32)
    stmt = (
        insert_for(engine, AppSecret.__table__)
        .values(name=SECRET_NAME, value=candidate)
        .on_conflict_do_nothing(index_elements=[AppSecret.name])
    )
    with engine.begin() as conn:
        conn.execute(stmt)
        query = select(AppSecret.value).where(AppSecret.name == SECRET_NAME)
        value = conn.execute(query).scalar_one()
    return str(value).encode("utf-8")
