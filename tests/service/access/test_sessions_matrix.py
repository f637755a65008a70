"""Who may do what, for whom: scope x endpoint x own/other shopper, on a real server over
SQLite and PostgreSQL. Session tokens (minted with the demo key) act for their own shopper
only; kiosk keys for shoppers they served (an event stored with their key); analyst keys for
no shopper; admin for all; the demo key itself only mints sessions."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from service.access.models import StreamTicket
from service.access.tickets import _hash
from service.db.base import utcnow
from service.settings import Settings
from service.touchpoints.models import Event
from tests.service.harness import DEMO_KEY, LiveServer, make_settings, wait_for

FAKE_TOKEN = "x" * 32  # a well-formed hand-off token nobody minted


@pytest.fixture(scope="module")
def server_settings(tmp_path_factory: pytest.TempPathFactory, db_url: str) -> Settings:
    return make_settings(
        tmp_path_factory.mktemp("sessions"),
        database_url=db_url,
        max_streams_per_principal=2,
        stream_idle_timeout_s=1.5,
    )


def _event(anonymous_id: str, *, user_id: str | None = None, **extra: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "event": "Try-On Started",
        "message_id": uuid.uuid4().hex,
        "anonymous_id": anonymous_id,
        "channel": "web",
        "properties": {"sku": "GL-001"},
    }
    if user_id:
        ev["user_id"] = user_id
    ev.update(extra)
    return ev


def mint(server: LiveServer, key: str = DEMO_KEY, **body: Any) -> dict[str, Any]:
    with server.client(key) as c:
        r = c.post("/v1/sessions", json=body or None)
    assert r.status_code == 201, r.text
    return dict(r.json())


class World:
    """Credentials and shoppers: a session (own = its shopper), kiosk keys, analyst, admin."""

    def __init__(self, server: LiveServer, keys: dict[str, str]) -> None:
        self.server = server
        self.keys = keys
        s = mint(server)
        self.session, self.own = s["token"], s["shopper_id"]
        self.served = f"served-{uuid.uuid4().hex[:8]}"  # a shopper the kiosk key served
        self.stranger = f"other-{uuid.uuid4().hex[:8]}"  # served by nobody but admin
        with server.client(self.session) as c:
            assert c.post("/v1/events", json={"events": [_event(self.own)]}).status_code == 200
        with server.client(keys["kiosk"]) as c:
            assert c.post("/v1/events", json={"events": [_event(self.served)]}).status_code == 200
        with server.client(keys["admin"]) as c:
            r = c.post("/v1/events", json={"events": [_event(self.stranger)]})
            assert r.status_code == 200

    def cred(self, who: str) -> str:
        return {"session": self.session, "demo": DEMO_KEY}.get(who) or self.keys[who]

    def shopper(self, which: str) -> str:
        return {"own": self.own, "served": self.served, "stranger": self.stranger}[which]

    def call(self, who: str, method: str, path: str, **kw: Any) -> httpx.Response:
        with self.server.client(self.cred(who)) as c:
            return c.request(method, path, **kw)


@pytest.fixture(scope="module")
def world(live_server: LiveServer, keys: dict[str, str]) -> World:
    return World(live_server, keys)


# (credential, shopper, allowed): the ownership matrix for every per-shopper route.
MATRIX = [
    ("session", "own", True),
    ("session", "served", False),
    ("session", "stranger", False),
    ("kiosk", "served", True),
    ("kiosk", "own", False),  # the session's shopper: minted by the demo key, not this kiosk
    ("kiosk", "stranger", False),
    ("analyst", "served", False),
    ("admin", "stranger", True),
    ("admin", "own", True),
    ("demo", "own", False),
]
IDS = [f"{who}-{whose}" for who, whose, _ in MATRIX]


@pytest.mark.parametrize(("who", "whose", "allowed"), MATRIX, ids=IDS)
class TestPerShopperRoutes:
    def test_get_offers(self, world: World, who: str, whose: str, allowed: bool) -> None:
        r = world.call(who, "GET", f"/v1/shoppers/{world.shopper(whose)}/offers")
        assert r.status_code == (200 if allowed else 403), r.text

    def test_offer_feedback(self, world: World, who: str, whose: str, allowed: bool) -> None:
        path = f"/v1/shoppers/{world.shopper(whose)}/offers/no-such-offer/feedback"
        r = world.call(who, "POST", path, json={"action": "accepted"})
        # Allowed: past the ownership check to the offer lookup (unknown offer: 404).
        assert r.status_code == (404 if allowed else 403), r.text

    def test_handoff_mint(self, world: World, who: str, whose: str, allowed: bool) -> None:
        r = world.call(who, "POST", "/v1/handoff", json={"anonymous_id": world.shopper(whose)})
        assert r.status_code == (201 if allowed else 403), r.text

    def test_handoff_claim(self, world: World, who: str, whose: str, allowed: bool) -> None:
        path = f"/v1/handoff/{FAKE_TOKEN}/claim"
        r = world.call(who, "POST", path, json={"anonymous_id": world.shopper(whose)})
        assert r.status_code == (404 if allowed else 403), r.text


class TestEvents:
    def test_session_stores_only_its_own_shopper(self, world: World) -> None:
        events = [
            _event(world.own),
            _event(world.stranger),
            _event(world.own, user_id="someone-else"),
            _event(world.own, key_id=999_999, _key_id=999_999),  # never trusted
        ]
        r = world.call("session", "POST", "/v1/events", json={"events": events})
        assert r.status_code == 200, r.text
        body = r.json()
        statuses = [(x["status"], (x.get("error") or {}).get("code")) for x in body["results"]]
        assert statuses == [
            ("accepted", None),
            ("rejected", "forbidden_shopper"),
            ("rejected", "forbidden_shopper"),
            ("accepted", None),
        ]
        demo_key_id = _key_id_of(world, DEMO_KEY)
        with world.server.app.state.runtime.sessions() as s:
            stored = s.get_one(Event, _event_pk(s, events[3]["message_id"]))
            assert stored.key_id == demo_key_id  # the key that minted the session
            assert _event_pk(s, events[1]["message_id"]) is None

    @pytest.mark.parametrize(("who", "status"), [("kiosk", 200), ("admin", 200),
                                                 ("analyst", 403), ("demo", 403)])
    def test_keys(self, world: World, who: str, status: int) -> None:
        r = world.call(who, "POST", "/v1/events", json={"events": [_event(world.stranger)]})
        assert r.status_code == status, r.text

    def test_kiosk_events_record_the_key(self, world: World) -> None:
        ev = _event(f"k-{uuid.uuid4().hex[:8]}")
        assert world.call("kiosk", "POST", "/v1/events", json=[ev]).status_code == 200
        with world.server.app.state.runtime.sessions() as s:
            pk = _event_pk(s, ev["message_id"])
            assert s.get_one(Event, pk).key_id == _key_id_of(world, world.keys["kiosk"])

    def test_kiosk_reads_a_shopper_once_it_served_one_linked_id(self, world: World) -> None:
        phone = mint(world.server)  # a phone's session claims a hand-off the kiosk minted
        kiosk_shopper = world.served
        r = world.call("kiosk", "POST", "/v1/handoff", json={"anonymous_id": kiosk_shopper})
        token = r.json()["token"]
        path = f"/v1/shoppers/{phone['shopper_id']}/offers"
        assert world.call("kiosk", "GET", path).status_code == 403
        with world.server.client(phone["token"]) as c:
            claim = c.post(f"/v1/handoff/{token}/claim",
                           json={"anonymous_id": phone["shopper_id"]})
            assert claim.status_code == 200, claim.text
            assert c.get(path).status_code == 200
        assert world.call("kiosk", "GET", path).status_code == 200  # linked to one it served


def _event_pk(session: Any, message_id: str) -> int | None:
    from sqlalchemy import select

    return session.scalar(select(Event.id).where(Event.message_id == message_id))


def _key_id_of(world: World, raw: str) -> int:
    from service.access.keys import authenticate_key

    with world.server.app.state.runtime.sessions() as s:
        row = authenticate_key(s, raw)
        assert row is not None
        return int(row.id)


class TestSessionsAndDemoKey:
    @pytest.mark.parametrize(("method", "path"), [
        ("GET", "/v1/products"), ("GET", "/v1/shades"), ("POST", "/v1/tryon/render"),
        ("POST", "/v1/tryon/stream-tickets"), ("POST", "/v1/events"),
        ("POST", "/v1/handoff"), ("GET", "/v1/analytics/funnel"), ("GET", "/v1/keys"),
    ])
    def test_the_demo_key_gets_403_on_everything_but_minting(
        self, world: World, method: str, path: str
    ) -> None:
        r = world.call("demo", method, path, content=b"x")
        assert r.status_code == 403, r.text

    def test_render_with_a_session_passes_auth(self, world: World) -> None:
        r = world.call("session", "POST", "/v1/tryon/render", content=b"not an image",
                       headers={"Content-Type": "image/jpeg"})
        assert r.status_code not in (401, 403), r.text
        assert world.call("analyst", "POST", "/v1/tryon/render", content=b"x").status_code == 403

    def test_mint_shape_and_rules(self, world: World) -> None:
        s = mint(world.server)
        assert s["token"].startswith("st_") and s["shopper_id"].startswith("anon-")
        assert s["expires_in"] == world.server.settings.session_ttl_s
        assert mint(world.server)["shopper_id"] != s["shopper_id"]  # one shopper per session
        with world.server.client(DEMO_KEY) as c:  # the demo key cannot pick the shopper
            assert c.post("/v1/sessions", json={"anonymous_id": "victim"}).status_code == 403
        kiosk = mint(world.server, world.keys["kiosk"], anonymous_id="kiosk-shopper-1")
        assert kiosk["shopper_id"] == "kiosk-shopper-1"
        for who in ("session", "analyst"):
            assert world.call(who, "POST", "/v1/sessions").status_code == 403

    def test_bad_and_forged_tokens_are_401(self, world: World) -> None:
        good = world.session
        payload, _, sig = good.partition(".")
        forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + sig
        for bad in (forged, good + "x", "st_nonsense", "st_a.b"):
            with world.server.client(bad) as c:
                assert c.get("/v1/products").status_code == 401, bad

    def test_expired_token_is_401(self, world: World) -> None:
        tokens = world.server.app.state.runtime.auth.tokens
        token, _ = tokens.mint("anon-old", 1, now=0)
        with world.server.client(token) as c:
            r = c.get("/v1/products")
        assert r.status_code == 401 and "expired" in r.json()["error"]["message"]

    def test_x_api_key_header_works_for_tokens(self, world: World) -> None:
        with world.server.client(world.session, header="X-API-Key") as c:
            assert c.get("/v1/shades").status_code == 200


# -- the stream ---------------------------------------------------------------------------
def ticket(server: LiveServer, cred: str) -> str:
    with server.client(cred) as c:
        r = c.post("/v1/tryon/stream-tickets")
    assert r.status_code == 201, r.text
    assert r.json()["expires_in"] == server.settings.stream_ticket_ttl_s
    return str(r.json()["ticket"])


def open_ws(server: LiveServer, query: str, **kw: Any) -> ClientConnection:
    return connect(f"{server.ws_url}/v1/tryon/stream?{query}", open_timeout=30, **kw)


def first(ws: ClientConnection, timeout: float = 20.0) -> dict[str, Any]:
    return dict(json.loads(ws.recv(timeout=timeout)))


def refused(ws: ClientConnection) -> tuple[dict[str, Any], int | None]:
    msg = first(ws)
    with pytest.raises(ConnectionClosed) as info:
        ws.recv(timeout=10)
    rcvd = info.value.rcvd
    return msg, rcvd.code if rcvd else None


@pytest.fixture()
def no_streams(live_server: LiveServer) -> Iterator[None]:
    yield
    assert wait_for(lambda: live_server.app.state.runtime.streams.active == 0)


@pytest.mark.usefixtures("no_streams")
class TestStream:
    @pytest.mark.parametrize("who", ["session", "kiosk", "admin"])
    def test_ticket_opens_a_stream(self, world: World, who: str) -> None:
        with open_ws(world.server, f"ticket={ticket(world.server, world.cred(who))}") as ws:
            assert first(ws)["type"] == "ready"

    @pytest.mark.parametrize("who", ["analyst", "demo"])
    def test_no_ticket_for_others(self, world: World, who: str) -> None:
        assert world.call(who, "POST", "/v1/tryon/stream-tickets").status_code == 403

    def test_session_stream_is_its_own_shopper(self, world: World) -> None:
        t = ticket(world.server, world.session)
        with open_ws(world.server, f"ticket={t}&anonymous_id={world.own}") as ws:
            assert first(ws)["type"] == "ready"
        for bad in (f"anonymous_id={world.stranger}", f"user_id={world.own}"):
            t = ticket(world.server, world.session)
            with open_ws(world.server, f"ticket={t}&{bad}") as ws:
                msg, code = refused(ws)
            assert (msg["code"], code) == ("forbidden_shopper", 1008)

    def test_session_stream_events_are_its_shopper_with_the_key(self, world: World) -> None:
        t = ticket(world.server, world.session)
        with open_ws(world.server, f"ticket={t}&anonymous_id={world.own}") as ws:
            session_id = first(ws)["session_id"]
            ws.send(json.dumps({"type": "snapshot"}))  # one event, no frame needed
            ws.send(json.dumps({"type": "end"}))
            while True:
                try:
                    ws.recv(timeout=20)
                except ConnectionClosed:
                    break
        from sqlalchemy import select

        def rows() -> list[Any]:
            with world.server.app.state.runtime.sessions() as s:
                q = select(Event.anonymous_id, Event.key_id).where(Event.session_id == session_id)
                return list(s.execute(q).all())

        assert wait_for(rows)
        assert {tuple(r) for r in rows()} == {(world.own, _key_id_of(world, DEMO_KEY))}

    def test_ticket_is_single_use(self, world: World) -> None:
        t = ticket(world.server, world.session)
        with open_ws(world.server, f"ticket={t}") as ws:
            assert first(ws)["type"] == "ready"
        with open_ws(world.server, f"ticket={t}") as ws:
            msg, code = refused(ws)
        assert code == 1008 and "ticket" in msg["message"]

    def test_expired_ticket_is_refused(self, world: World) -> None:
        t = ticket(world.server, world.session)
        with world.server.app.state.runtime.sessions.begin() as s:
            s.execute(update(StreamTicket).where(StreamTicket.ticket_hash == _hash(t))
                      .values(expires_at=utcnow()))
        with open_ws(world.server, f"ticket={t}") as ws:
            _, code = refused(ws)
        assert code == 1008

    @pytest.mark.parametrize("param", ["key", "token"])
    def test_credentials_in_the_url_are_refused(self, world: World, param: str) -> None:
        with open_ws(world.server, f"{param}={world.keys['kiosk']}") as ws:
            msg, code = refused(ws)
        assert code == 1008 and "ticket" in msg["message"]

    def test_header_and_first_message_auth_still_work(self, world: World) -> None:
        headers = {"X-API-Key": world.keys["kiosk"]}
        with open_ws(world.server, "", additional_headers=headers) as ws:
            assert first(ws)["type"] == "ready"
        with open_ws(world.server, "") as ws:
            ws.send(json.dumps({"type": "auth", "key": world.session}))
            assert first(ws)["type"] == "ready"
        with open_ws(world.server, "") as ws:
            ws.send(json.dumps({"type": "auth", "key": DEMO_KEY}))
            _, code = refused(ws)
            assert code == 1008

    def test_per_principal_cap(self, world: World) -> None:
        cap = world.server.settings.max_streams_per_principal
        held = [open_ws(world.server, f"ticket={ticket(world.server, world.session)}")
                for _ in range(cap)]
        try:
            for ws in held:
                assert first(ws)["type"] == "ready"
            with open_ws(world.server, f"ticket={ticket(world.server, world.session)}") as ws:
                msg, code = refused(ws)
            assert (msg["code"], code) == ("too_many_streams", 1013)
            other = mint(world.server)["token"]  # another session still gets in
            with open_ws(world.server, f"ticket={ticket(world.server, other)}") as ws:
                assert first(ws)["type"] == "ready"
        finally:
            for ws in held:
                ws.close()

    def test_idle_stream_is_closed_pings_do_not_count(self, world: World) -> None:
        idle = world.server.settings.stream_idle_timeout_s
        with open_ws(world.server, f"ticket={ticket(world.server, world.session)}") as ws:
            assert first(ws)["type"] == "ready"
            got: list[dict[str, Any]] = []
            t0 = time.monotonic()
            with pytest.raises(ConnectionClosed) as info:
                while time.monotonic() - t0 < idle * 6:  # ping on, past the timeout
                    ws.send(json.dumps({"type": "ping"}))
                    with contextlib.suppress(TimeoutError):
                        got.append(first(ws, timeout=0.3))
                    time.sleep(0.2)
            closed_after = time.monotonic() - t0
            while True:  # what came before the close frame
                try:
                    got.append(first(ws, timeout=1))
                except (ConnectionClosed, TimeoutError):
                    break
        assert idle * 0.9 <= closed_after < idle * 4
        assert got[-1]["code"] == "idle" and {"type": "pong"} in got
        assert info.value.rcvd is not None and info.value.rcvd.code == 1000
