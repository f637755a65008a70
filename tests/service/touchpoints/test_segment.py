"""Segment HTTP Tracking API compatibility, driven by the real segment-analytics-python SDK."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import segment.analytics as analytics
from segment.analytics.request import APIError
from sqlalchemy import select

from service.identity.service import resolve_shopper_ids
from service.touchpoints.models import Event
from tests.service.harness import Api, LiveServer
from tests.service.touchpoints.support import new_id, server_settings

__all__ = ["server_settings"]  # this module's live server runs on db_url


def rows_for(api: Api, shopper: str) -> list[Event]:
    with api.sessionmaker() as s:
        stmt = select(Event).where(Event.anonymous_id == shopper).order_by(Event.id)
        return list(s.scalars(stmt))


@pytest.fixture
def errors() -> list[Exception]:
    return []


@pytest.fixture
def sdk(api: Api, live_server: LiveServer, errors: list[Exception]) -> Iterator[analytics.Client]:
    """The real SDK, write key = a kiosk-scope API key, pointed at uvicorn on loopback."""
    client = analytics.Client(
        write_key=api.keys["kiosk"], host=live_server.url, sync_mode=True, max_retries=0,
        on_error=lambda e, batch: errors.append(e),
    )
    yield client  # sync mode has no consumer thread to shut down (shutdown() would raise)


class TestSegmentSdk:
    def test_track_in_sync_mode_stores_the_event(
        self, api: Api, sdk: analytics.Client, errors: list
    ) -> None:
        shopper = new_id("seg-")
        sdk.track(
            anonymous_id=shopper, event="Frame Applied",
            properties={"sku": "G-7", "variant": "tortoise", "channel": "kiosk",
                        "store_id": "berlin-1", "session_id": "sess-1"},
        )
        assert errors == []
        (row,) = rows_for(api, shopper)
        assert (row.event, row.sku, row.variant, row.channel, row.store_id, row.session_id) == (
            "Frame Applied", "G-7", "tortoise", "kiosk", "berlin-1", "sess-1")
        assert row.source == "segment"
        assert row.context["library"]["name"] == "analytics-python"
        assert len(row.message_id) >= 32  # the SDK's UUID

    def test_batched_queue_with_flush_and_gzip(self, api: Api, live_server: LiveServer) -> None:
        errs: list = []
        client = analytics.Client(
            write_key=api.keys["kiosk"], host=live_server.url, gzip=True, upload_size=10,
            max_retries=0, on_error=lambda e, b: errs.append(e),
        )
        shopper = new_id("seg-")
        for i in range(25):
            client.track(anonymous_id=shopper, event="Try-On Dwell",
                         properties={"sku": "G-1", "dwell_ms": 100 * i})
        client.flush()
        client.shutdown()
        assert errs == []
        assert sorted(r.dwell_ms for r in rows_for(api, shopper)) == [100 * i for i in range(25)]

    def test_identify_links_anonymous_id_to_user_id(
        self, api: Api, sdk: analytics.Client, errors: list
    ) -> None:
        anon, user = new_id("anon-"), new_id("user-")
        sdk.page(anonymous_id=anon, name="Home")  # accepted, not a touchpoint
        sdk.track(anonymous_id=anon, event="Try-On Started", properties={"sku": "G-1"})
        sdk.identify(user_id=user, anonymous_id=anon, traits={"plan": "vip"})
        sdk.track(user_id=user, anonymous_id=anon, event="Product Added",
                  properties={"sku": "G-1"})
        assert errors == []
        with api.sessionmaker() as s:
            assert resolve_shopper_ids(s, user) == [user, anon]
        assert [r.shopper_id for r in rows_for(api, anon)] == [anon, user]

    def test_invalid_events_are_dropped_like_segment_does(
        self, api: Api, sdk: analytics.Client, errors: list
    ) -> None:
        shopper = new_id("seg-")
        sdk.track(anonymous_id=shopper, event="Not A Touchpoint")
        sdk.track(anonymous_id=shopper, event="Feedback Submitted", properties={"nps": 42})
        sdk.track(anonymous_id=shopper, event="Feedback Submitted", properties={"nps": 8})
        assert errors == []  # Segment answers 200 and drops invalid messages
        assert [r.properties["nps"] for r in rows_for(api, shopper)] == [8]

    def test_rejections_are_counted_listed_and_numbers_stay_numbers(
        self, api: Api, live_server: LiveServer, sdk: analytics.Client, errors: list
    ) -> None:
        """The issue's drops: an unknown event, NPS 11, currency "eur", an order without
        order_id. The SDK still reports success (as Segment does), but each is counted by
        reason in /metrics, logged at WARNING and listed for admins; and numbers sent as
        numbers are stored as numbers."""
        shopper = new_id("seg-")
        sdk.track(anonymous_id=shopper, event="Not A Touchpoint")
        sdk.track(anonymous_id=shopper, event="Feedback Submitted", properties={"nps": 11})
        sdk.track(anonymous_id=shopper, event="Product Added",
                  properties={"sku": "G-1", "price": 119, "currency": "eur"})
        sdk.track(anonymous_id=shopper, event="Order Completed",
                  properties={"sku": "G-1", "total": 119})
        sdk.track(anonymous_id=shopper, event="Product Added",
                  properties={"sku": "G-1", "price": 119, "currency": "EUR", "quantity": 2})
        sdk.track(anonymous_id=shopper, event="Order Completed",
                  properties={"order_id": "o-1", "currency": "EUR", "total": 64.5,
                              "products": [{"shade": "plum-velvet", "price": 22.5}]})
        sdk.track(anonymous_id=shopper, event="Feedback Submitted", properties={"nps": 9})
        assert errors == []
        stored = {r.event: r for r in rows_for(api, shopper)}
        added, order = stored["Product Added"].properties, stored["Order Completed"].properties
        assert added["price"] == 119 and isinstance(added["price"], int)
        assert added["quantity"] == 2 and isinstance(added["quantity"], int)
        assert order["total"] == 64.5 and isinstance(order["total"], float)
        assert order["products"][0] == {"sku": "plum-velvet", "shade": "plum-velvet",
                                        "price": 22.5, "quantity": 1}
        assert stored["Feedback Submitted"].properties["nps"] == 9

        metrics = httpx.get(f"{live_server.url}/metrics").text
        for reason in ("unknown_event", "invalid"):
            line = f'tryon_events_rejected_total{{reason="{reason}",source="segment"}}'
            assert line in metrics, metrics[-2000:]
        invalid = next(ln for ln in metrics.splitlines() if ln.startswith(
            'tryon_events_rejected_total{reason="invalid",source="segment"}'))
        assert float(invalid.split()[-1]) >= 3
        c = api.client
        assert c.get("/v1/admin/rejections", headers={"X-API-Key": api.keys["kiosk"]}
                     ).status_code == 403
        body = c.get("/v1/admin/rejections", headers={"X-API-Key": api.keys["admin"]},
                     params={"limit": 50}).json()
        mine = [r for r in body["items"] if r["event"] in (
            "Not A Touchpoint", "Feedback Submitted", "Product Added", "Order Completed")]
        codes = {(r["event"], r["code"]) for r in mine}
        assert {("Not A Touchpoint", "unknown_event"), ("Feedback Submitted", "invalid"),
                ("Product Added", "invalid"), ("Order Completed", "invalid")} <= codes
        text = json.dumps(body)
        assert shopper not in text and "eur" not in text  # no ids, no values
        assert any("properties.nps" in r["message"] for r in mine)
        assert all(r["source"] == "segment" and r["message_id"] for r in mine)

    def test_bad_write_key_is_rejected(self, api: Api, live_server: LiveServer) -> None:
        client = analytics.Client(write_key="not-a-key", host=live_server.url, sync_mode=True,
                                  max_retries=0)
        shopper = new_id("seg-")
        # sync mode raises the SDK's APIError, parsed from our Segment-shaped error body
        with pytest.raises(APIError) as exc:
            client.track(anonymous_id=shopper, event="Try-On Started")
        assert (exc.value.status, exc.value.code) == (401, "unauthorized")
        assert rows_for(api, shopper) == []

    def test_analyst_key_is_not_a_write_key(self, api: Api, live_server: LiveServer) -> None:
        client = analytics.Client(write_key=api.keys["analyst"], host=live_server.url,
                                  sync_mode=True, max_retries=0)
        with pytest.raises(APIError) as exc:
            client.track(anonymous_id="x", event="Try-On Started")
        assert (exc.value.status, exc.value.code) == (403, "forbidden")


class TestSegmentWire:
    """Raw HTTP for what the SDK does not exercise: retries, /v1/track, limits."""

    def basic(self, api: Api) -> dict[str, str]:
        token = base64.b64encode(f"{api.keys['kiosk']}:".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def test_track_endpoint_and_replayed_messages(self, api: Api, live_server: LiveServer) -> None:
        shopper = new_id("wire-")
        msg = {"messageId": new_id(), "event": "Order Completed", "anonymousId": shopper,
               "timestamp": "2026-11-01T10:00:00.000Z",
               "properties": {"order_id": "o-1", "products": [{"sku": "G-1", "price": 99},
                                                              {"sku": "G-2"}],
                              "currency": "EUR"}}
        for _ in range(2):  # a client retry
            r = httpx.post(f"{live_server.url}/v1/track", json=msg, headers=self.basic(api))
            assert r.status_code == 200 and r.json() == {"success": True}
        (row,) = rows_for(api, shopper)
        assert row.sku is None and [p["sku"] for p in row.properties["products"]] == [
            "G-1", "G-2"]

    def test_missing_message_id_gets_a_stable_one(self, api: Api, live_server: LiveServer) -> None:
        shopper = new_id("wire-")
        msg = {"type": "track", "event": "Try-On Started", "anonymousId": shopper,
               "timestamp": "2026-11-01T10:00:00Z"}
        body = gzip.compress(json.dumps({"batch": [msg, msg]}).encode())
        headers = {**self.basic(api), "Content-Encoding": "gzip",
                   "Content-Type": "application/json"}
        assert httpx.post(f"{live_server.url}/v1/batch", content=body, headers=headers).json() == {
            "success": True}
        assert len(rows_for(api, shopper)) == 1

    def test_sender_clock_skew_is_corrected_from_sent_at(
        self, api: Api, live_server: LiveServer
    ) -> None:
        now = datetime.now(UTC)
        fast = now + timedelta(days=1)  # a kiosk whose clock runs a day fast
        shopper = new_id("skew-")
        msgs = [{"type": "track", "messageId": new_id(), "event": "Try-On Started",
                 "anonymousId": shopper, "timestamp": (fast - timedelta(seconds=10)).isoformat()}]
        r = httpx.post(f"{live_server.url}/v1/batch", headers=self.basic(api),
                       json={"batch": msgs, "sentAt": fast.isoformat()})
        assert r.status_code == 200
        (row,) = rows_for(api, shopper)
        assert abs((row.timestamp - (now - timedelta(seconds=10))).total_seconds()) < 5
        assert row.context["clock_skew_corrected_s"] < -86_000
        # a right clock with a far-future timestamp is still rejected
        bad = [{**msgs[0], "messageId": new_id(), "timestamp": fast.isoformat()}]
        httpx.post(f"{live_server.url}/v1/batch", headers=self.basic(api),
                   json={"batch": bad, "sentAt": now.isoformat()})
        assert len(rows_for(api, shopper)) == 1

    def test_write_key_in_body_and_limits(self, api: Api, live_server: LiveServer) -> None:
        shopper = new_id("wire-")
        msgs = [{"type": "track", "messageId": new_id(), "event": "Try-On Started",
                 "anonymousId": shopper}]
        r = httpx.post(f"{live_server.url}/v1/batch",
                       json={"batch": msgs, "writeKey": api.keys["kiosk"]})
        assert r.status_code == 200
        r = httpx.post(f"{live_server.url}/v1/batch", json={"batch": msgs * 501},
                       headers=self.basic(api))
        assert r.status_code == 413 and r.json()["success"] is False
        r = httpx.post(f"{live_server.url}/v1/batch", content=b"{not json",
                       headers=self.basic(api))
        assert r.status_code == 400 and r.json()["code"] == "invalid_request"
        r = httpx.post(f"{live_server.url}/v1/batch", json={"batch": msgs})
        assert r.status_code == 401 and r.json()["success"] is False

    def test_hostile_bodies_get_4xx_or_are_dropped_never_500(
        self, api: Api, live_server: LiveServer
    ) -> None:
        # Each of these was a 500: JSON nested past the parser's recursion limit; a skew
        # correction past year 9999 (sentAt from year 1); identify ids no column can hold.
        headers = {**self.basic(api), "Content-Type": "application/json"}
        for path in ("/v1/batch", "/v1/track", "/v1/identify"):
            r = httpx.post(f"{live_server.url}{path}", content="[" * 5000 + "]" * 5000,
                           headers=headers)
            assert r.status_code == 400 and r.json()["code"] == "invalid_request"
        shopper = new_id("skew-")
        ok = {"type": "track", "messageId": new_id(), "event": "Try-On Started",
              "anonymousId": shopper}
        far = [{**ok, "messageId": new_id(), "timestamp": "9999-12-31T00:00:00Z"},
               {**ok, "messageId": new_id(), "sentAt": "9999-12-31T23:59:59Z",
                "timestamp": "0001-01-02T00:00:00Z"}, ok]
        r = httpx.post(f"{live_server.url}/v1/batch", headers=self.basic(api),
                       json={"batch": far, "sentAt": "0001-01-01T00:00:00Z"})
        assert r.status_code == 200 and r.json() == {"success": True}
        assert [row.message_id for row in rows_for(api, shopper)] == [ok["messageId"]]
        user = new_id("user-")
        for anon in ("a" * 129, "nul\x00id", {"an": "object"}):
            r = httpx.post(f"{live_server.url}/v1/identify", headers=self.basic(api),
                           json={"anonymousId": anon, "userId": user})
            assert r.status_code == 200 and r.json() == {"success": True}
        with api.sessionmaker() as s:
            assert resolve_shopper_ids(s, user) == [user]
