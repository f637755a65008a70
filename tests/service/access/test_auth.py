"""API keys through real HTTP: missing/wrong key, wrong scope, revocation, hashing, rate limits."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from service.access.keys import (
    SATISFIED_BY,
    authenticate_key,
    create_key,
    hash_key,
    revoke_key,
)
from service.access.limits import RateLimiter
from service.db.engine import make_engine, make_sessionmaker
from service.db.migrate import upgrade
from tests.service.harness import ADMIN_KEY, DEMO_KEY, LiveServer, free_port


class TestKeys:
    def test_missing_key_is_401_json(self, live_server: LiveServer) -> None:
        with live_server.client() as c:
            r = c.get("/v1/products")
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "unauthorized"
        assert "Bearer" in r.json()["error"]["message"]

    def test_wrong_key_is_401(self, live_server: LiveServer) -> None:
        with live_server.client("not-a-real-key") as c:
            r = c.get("/v1/products")
        assert r.status_code == 401
        assert r.json()["error"]["message"] == "unknown or revoked API key"

    def test_x_api_key_header_works_like_bearer(self, live_server: LiveServer) -> None:
        with live_server.client() as c:
            kiosk = live_server.kiosk_key
            assert c.get("/v1/shades", headers={"X-API-Key": kiosk}).status_code == 200
            assert c.get("/v1/shades", headers={"Authorization": f"Bearer {kiosk}"}
                         ).status_code == 200

    def test_wrong_scope_is_403(self, live_server: LiveServer) -> None:
        analyst = live_server.create_key(["analyst"])["key"]
        with live_server.client(analyst) as c:
            r = c.get("/v1/products")
        assert r.status_code == 403
        assert r.json()["error"]["detail"] == {"scopes": ["analyst"]}
        with live_server.client(DEMO_KEY) as c:  # the public demo key cannot manage keys
            assert c.get("/v1/keys").status_code == 403
            assert c.post("/v1/keys", json={"name": "x", "scopes": ["admin"]}).status_code == 403

    def test_create_list_revoke(self, live_server: LiveServer) -> None:
        created = live_server.create_key(["kiosk"], name="kiosk-7")
        raw = created["key"]
        assert created["scopes"] == ["kiosk"] and created["prefix"] == raw[:8]
        with live_server.client(raw) as c:
            assert c.get("/v1/shades").status_code == 200
        with live_server.client(ADMIN_KEY) as c:
            listed = {k["id"]: k for k in c.get("/v1/keys").json()}
            assert "key" not in listed[created["id"]]  # the raw key is shown once only
            assert c.delete(f"/v1/keys/{created['id']}").json()["revoked_at"] is not None
            assert c.delete("/v1/keys/999999").status_code == 404
            for huge in ("99999999999999999999", "9223372036854775808", "-9223372036854775809"):
                r = c.delete(f"/v1/keys/{huge}")  # past 64 bits: was an OverflowError, 500
                assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
        with live_server.client(raw) as c:
            assert c.get("/v1/shades").status_code == 401

    def test_revoking_a_key_ends_the_sessions_it_minted(self, live_server: LiveServer) -> None:
        created = live_server.create_key(["kiosk"], name="kiosk-leaked")
        with live_server.client(created["key"]) as c:
            token = c.post("/v1/sessions").json()["token"]
        other = live_server.create_key(["kiosk"], name="kiosk-kept")
        with live_server.client(other["key"]) as c:
            kept = c.post("/v1/sessions").json()["token"]
        for t in (token, kept):
            with live_server.client(t) as c:
                assert c.get("/v1/shades").status_code == 200
        with live_server.client(ADMIN_KEY) as c:
            assert c.delete(f"/v1/keys/{created['id']}").status_code == 200
        with live_server.client(token) as c:
            r = c.get("/v1/shades")
        assert r.status_code == 401
        assert "revoked" in r.json()["error"]["message"]
        with live_server.client(kept) as c:  # another key's sessions are untouched
            assert c.get("/v1/shades").status_code == 200

    def test_bad_scope_in_create_is_422(self, live_server: LiveServer) -> None:
        with live_server.client(ADMIN_KEY) as c:
            r = c.post("/v1/keys", json={"name": "x", "scopes": ["root"]})
        assert r.status_code == 422

    def test_keys_are_stored_hashed(self, live_server: LiveServer) -> None:
        raw = live_server.create_key(["kiosk"], name="hash-check")["key"]
        engine = create_engine(live_server.settings.database_url)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT * FROM api_keys")).mappings().all()
        engine.dispose()
        assert any(r["key_hash"] == hashlib.sha256(raw.encode()).hexdigest() for r in rows)
        assert all(raw not in str(dict(r).values()) for r in rows)


class TestRateLimit:
    def test_per_key_limit_gives_429_then_other_keys_unaffected(
        self, live_server: LiveServer
    ) -> None:
        limited = live_server.create_key(["kiosk"], rate_limit=3)["key"]
        with live_server.client(limited) as c:
            codes = [c.get("/v1/shades").status_code for _ in range(5)]
            r = c.get("/v1/shades")
        assert codes[:3] == [200, 200, 200]
        assert codes[3:] == [429, 429]
        assert r.json()["error"]["code"] == "rate_limited"
        assert int(r.headers["Retry-After"]) > 0
        with live_server.client(DEMO_KEY) as c:  # the demo key only mints sessions
            assert c.get("/v1/shades").status_code == 403
            assert c.post("/v1/sessions").status_code == 201


def _key_store(tmp_path: Path, name: str) -> tuple[Engine, sessionmaker[Session], int, str]:
    """A migrated SQLite store holding one kiosk key: (engine, sessions, key id, raw key)."""
    engine = make_engine(f"sqlite:///{tmp_path}/k.sqlite")
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as s:
        row, raw = create_key(s, name, ["kiosk"])
        key_id = row.id
    return engine, sessions, key_id, raw


class TestScopesUnit:
    def test_scope_implications(self) -> None:
        assert "demo" not in SATISFIED_BY["kiosk"]  # the demo key only mints sessions
        assert "session" in SATISFIED_BY["kiosk"]  # its session tokens try on and post events
        assert SATISFIED_BY["demo"] == {"demo", "kiosk", "admin"}  # who may mint sessions
        assert "demo" not in SATISFIED_BY["analyst"] and "demo" not in SATISFIED_BY["admin"]
        assert "kiosk" not in SATISFIED_BY["analyst"]

    def test_session_key_check_fails_open_only_when_the_database_is_down(self, tmp_path) -> None:
        """A revoked issuer ends its tokens (database up); a database that cannot be reached
        does not end every session (the signature is still checked)."""
        from service.access.keys import Authenticator
        from service.access.tokens import SessionTokens
        from service.errors import Unauthorized

        tokens = SessionTokens(b"s" * 32, ttl_s=600)
        engine, sessions, key_id, _ = _key_store(tmp_path, "kiosk")
        token, _ = tokens.mint("shopper-1", key_id)
        limiter = RateLimiter(engine)
        auth = Authenticator(sessions, limiter, default_limit=0, demo_limit=0, tokens=tokens)
        assert auth._session_principal(token).shopper_id == "shopper-1"
        with sessions.begin() as s:
            revoke_key(s, key_id)
        with pytest.raises(Unauthorized, match="revoked"):
            auth._session_principal(token)
        # Nothing listens on port 1: the connection is refused, the database "unavailable".
        down = make_sessionmaker(make_engine("postgresql+psycopg://postgres@127.0.0.1:1/test"))
        outage = Authenticator(down, limiter, default_limit=0, demo_limit=0, tokens=tokens)
        assert outage._session_principal(token).shopper_id == "shopper-1"
        with pytest.raises(Unauthorized):  # a forged token is still refused
            outage._session_principal(token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))
        engine.dispose()

    def test_authenticate_key_on_sqlite(self, tmp_path) -> None:
        engine, sessions, key_id, raw = _key_store(tmp_path, "segment source")
        with sessions() as s:
            found = authenticate_key(s, raw)
            assert found is not None and found.id == key_id
            assert found.key_hash == hash_key(raw)
            assert authenticate_key(s, raw + "x") is None
            assert authenticate_key(s, "") is None
        engine.dispose()


class TestRateLimiterUnit:
    def test_fixed_window_counts_in_the_database(self, tmp_path) -> None:
        engine = make_engine(f"sqlite:///{tmp_path}/rl.sqlite")
        upgrade(engine)
        limiter = RateLimiter(engine)
        assert [limiter.hit("key:1", now=120.0)[0] for _ in range(3)] == [1, 2, 3]
        assert limiter.hit("key:2", now=130.0)[0] == 1  # buckets are independent
        count, reset = limiter.hit("key:1", now=185.0)  # next minute: a fresh window
        assert (count, reset) == (1, 55)
        with engine.connect() as conn:  # the old window of key:1 was cleaned up
            rows = conn.execute(text("SELECT bucket, window_start FROM rate_counters")).all()
        assert sorted(rows) == [("key:1", 180), ("key:2", 120)]
        engine.dispose()

    def test_redis_outage_falls_back_to_the_database(self, tmp_path) -> None:
        engine = make_engine(f"sqlite:///{tmp_path}/rl.sqlite")
        upgrade(engine)
        dead = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5,
                           retry=Retry(NoBackoff(), 0))
        limiter = RateLimiter(engine, dead, prefix="unused:")
        assert [limiter.hit("key:9", now=60.0)[0] for _ in range(3)] == [1, 2, 3]
        engine.dispose()
