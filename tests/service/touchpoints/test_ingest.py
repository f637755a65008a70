"""POST /v1/events and ingest() on a real SQLite file and the real PostgreSQL server."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import jsonschema
import pytest
from sqlalchemy import func, select

from service.touchpoints.models import Event
from service.touchpoints.schemas import EVENT_NAMES
from service.touchpoints.service import Ingestor, ingest
from service.touchpoints.sink import DatabaseEventSink
from service.wiring import ingest_hooks
from tests.service.harness import Api
from tests.service.touchpoints.support import new_id, server_settings, track

__all__ = ["server_settings"]  # this module's live server runs on db_url


def stored(api: Api, *message_ids: str) -> list[Event]:
    with api.sessionmaker() as s:
        return list(s.scalars(select(Event).where(Event.message_id.in_(message_ids))))


class TestSchemas:
    def test_one_json_schema_per_event_that_validates_examples(self, api: Api) -> None:
        body = api.client.get("/v1/events/schemas").json()
        assert set(body["schemas"]) == set(EVENT_NAMES) and len(EVENT_NAMES) == 13
        schema = body["schemas"]["Feedback Submitted"]
        good = track("Feedback Submitted", "s", nps=10)
        jsonschema.validate(good, schema)
        bad = track("Feedback Submitted", "s", nps=11)
        try:
            jsonschema.validate(bad, schema)
            raise AssertionError("nps 11 passed the JSON Schema")
        except jsonschema.ValidationError:
            pass


class TestAuth:
    def test_no_key_is_401_and_analyst_key_is_403(self, api: Api) -> None:
        ev = [track("Try-On Started", "s")]
        assert api.client.post("/v1/events", json={"events": ev}).status_code == 401
        r = api.post_events(ev, scope="analyst")
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"

    def test_demo_key_may_not_post_events_its_sessions_may(self, api: Api) -> None:
        assert api.post_events([track("Try-On Started", "s")], scope="demo").status_code == 403
        r = api.client.post("/v1/sessions", headers=api.headers("demo"))
        token, own = r.json()["token"], r.json()["shopper_id"]
        r = api.client.post("/v1/events", json=[track("Try-On Started", own)],
                            headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.json()["inserted"] == 1


class TestBatchValidation:
    def test_invalid_siblings_do_not_cost_valid_events(self, api: Api) -> None:
        shopper = new_id("shopper-")
        good1 = track("Frame Applied", shopper, sku="G-100", variant="black")
        good2 = track("Feedback Submitted", shopper, nps=9, comment="great")
        bad_nps = track("Feedback Submitted", shopper, nps=11)
        no_sku = track("Frame Applied", shopper)
        unknown = {**track("Try-On Started", shopper), "event": "Glasses Levitated"}
        not_object = "Try-On Started"
        no_ids = track("Try-On Started", shopper)
        del no_ids["anonymous_id"]
        bad_channel = {**track("Try-On Started", shopper), "channel": "carrier pigeon"}
        bad_time = {**track("Try-On Started", shopper), "timestamp": "yesterday-ish"}
        batch = [good1, bad_nps, no_sku, unknown, not_object, good2, no_ids, bad_channel, bad_time]
        r = api.post_events(batch)
        assert r.status_code == 200
        body = r.json()
        assert (body["inserted"], body["duplicates"], body["rejected"]) == (2, 0, 7)
        statuses = [(x["index"], x["status"]) for x in body["results"]]
        assert statuses == [(0, "accepted"), (1, "rejected"), (2, "rejected"), (3, "rejected"),
                            (4, "rejected"), (5, "accepted"), (6, "rejected"), (7, "rejected"),
                            (8, "rejected")]
        res = body["results"]
        assert res[1]["error"]["code"] == "invalid"
        assert res[1]["error"]["detail"][0]["loc"] == ["properties", "nps"]
        assert res[2]["error"]["detail"][0]["loc"] == ["properties", "sku"]
        assert res[3]["error"]["code"] == "unknown_event"
        assert "Try-On Started" in res[3]["error"]["detail"]["known"]
        assert res[4]["error"]["code"] == "malformed"
        assert "anonymous_id or user_id" in str(res[6]["error"]["detail"])
        assert res[7]["error"]["detail"][0]["loc"] == ["channel"]
        assert res[8]["error"]["detail"][0]["loc"] == ["timestamp"]
        rows = stored(api, good1["message_id"], good2["message_id"])
        assert len(rows) == 2
        frame = next(r for r in rows if r.event == "Frame Applied")
        assert (frame.sku, frame.variant, frame.channel, frame.shopper_id) == (
            "G-100", "black", "kiosk", shopper)
        assert frame.received_at.tzinfo is not None
        assert abs((frame.received_at - datetime.now(UTC)).total_seconds()) < 60

    def test_segment_style_camel_case_is_accepted(self, api: Api) -> None:
        ev = {"messageId": new_id(), "event": "Product Added", "anonymousId": "anon-1",
              "userId": "user-1", "properties": {"sku": "G-1", "price": "129.90",
                                                  "currency": "EUR"},
              "type": "track", "integrations": {}, "sentAt": "2026-01-01T00:00:00Z",
              "receivedAt": "1999-01-01T00:00:00Z"}  # Segment metadata: ignored
        body = api.post_events([ev]).json()
        assert body["inserted"] == 1, body
        (row,) = stored(api, ev["messageId"])
        assert (row.shopper_id, row.anonymous_id, str(row.price), row.currency) == (
            "user-1", "anon-1", "129.90", "EUR")
        # timestamp defaults to the server's receive time
        assert row.timestamp == row.received_at

    def test_unknown_envelope_keys_are_errors_not_silently_dropped(self, api: Api) -> None:
        ev = {**track("Try-On Started", "s"), "sesion_id": "typo"}
        (res,) = api.post_events([ev]).json()["results"]
        detail = res["error"]["detail"][0]
        assert (detail["loc"], detail["type"]) == (["sesion_id"], "extra_forbidden")

    def test_an_empty_body_or_wrong_shape_is_a_clear_422(self, api: Api) -> None:
        r = api.client.post("/v1/events", json={"evnts": []}, headers=api.headers())
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"


class TestIdempotency:
    def test_same_batch_twice_stores_once(self, api: Api) -> None:
        shopper = new_id("shopper-")
        batch = [track("Try-On Dwell", shopper, sku="G-1", dwell_ms=1000 * i) for i in range(20)]
        first = api.post_events(batch).json()
        second = api.post_events(batch).json()
        assert (first["inserted"], first["duplicates"]) == (20, 0)
        assert (second["inserted"], second["duplicates"]) == (0, 20)
        assert {x["error"]["code"] for x in second["results"]} == {"duplicate"}
        assert len(stored(api, *(e["message_id"] for e in batch))) == 20

    def test_duplicates_within_one_batch(self, api: Api) -> None:
        ev = track("Snapshot Captured", new_id("s-"), sku="G-2")
        other = track("Snapshot Captured", new_id("s-"), sku="G-3")
        body = api.post_events([ev, other, dict(ev), ev]).json()
        assert (body["inserted"], body["duplicates"], body["rejected"]) == (2, 2, 0)
        assert [x["status"] for x in body["results"]] == [
            "accepted", "accepted", "duplicate", "duplicate"]
        assert body["results"][2]["error"]["code"] == "duplicate_in_batch"
        with api.sessionmaker() as s:
            n = s.scalar(select(func.count()).where(Event.message_id == ev["message_id"]))
        assert n == 1

    def test_concurrent_identical_batches_store_once(self, api: Api) -> None:
        batch = [track("Try-On Started", new_id("c-")) for _ in range(50)]
        results: list[dict] = []

        def post() -> None:
            results.append(api.post_events(batch).json())

        threads = [threading.Thread(target=post) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(r["inserted"] for r in results) == 50
        assert sum(r["duplicates"] for r in results) == 100
        assert len(stored(api, *(e["message_id"] for e in batch))) == 50


class TestTimestamps:
    def test_far_future_is_rejected_small_skew_and_past_accepted(self, api: Api) -> None:
        now = datetime.now(UTC)
        shopper = new_id("t-")
        far = {**track("Try-On Started", shopper),
               "timestamp": (now + timedelta(days=2)).isoformat()}
        near = {**track("Try-On Started", shopper),
                "timestamp": (now + timedelta(seconds=30)).isoformat()}
        past = {**track("Try-On Started", shopper),
                "timestamp": (now - timedelta(days=30)).isoformat()}
        ancient = {**track("Try-On Started", shopper), "timestamp": "1970-01-01T00:00:00Z"}
        naive = {**track("Try-On Started", shopper), "timestamp": "2026-01-01T12:00:00"}
        body = api.post_events([far, near, past, ancient, naive]).json()
        assert [x["status"] for x in body["results"]] == [
            "rejected", "accepted", "accepted", "rejected", "accepted"]
        assert body["results"][0]["error"]["code"] == "future_timestamp"
        assert body["results"][3]["error"]["code"] == "invalid_timestamp"
        (row,) = stored(api, naive["message_id"])
        assert row.timestamp == datetime(2026, 1, 1, 12, tzinfo=UTC)  # naive read as UTC

    def test_skew_is_configurable(self, api: Api) -> None:
        ev = {**track("Try-On Started", "s"),
              "timestamp": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}
        with api.sessionmaker.begin() as s:
            assert ingest(s, [ev], source="test", max_future_skew_s=60).rejected == 1
            assert ingest(s, [ev], source="test", max_future_skew_s=7200).inserted == 1


class TestOversizeBatch:
    def test_501_events_is_413_with_clear_json_and_nothing_stored(self, api: Api) -> None:
        batch = [track("Try-On Started", "big") for _ in range(501)]
        r = api.post_events(batch)
        assert r.status_code == 413
        err = r.json()["error"]
        assert err["code"] == "payload_too_large"
        assert err["detail"] == {"limit": 500, "received": 501}
        assert stored(api, batch[0]["message_id"]) == []

    def test_body_over_the_byte_limit_is_413_before_it_is_read(self, api: Api) -> None:
        limit = api.app.state.runtime.settings.max_body_bytes
        big = b'{"events": [' + b" " * limit + b"]}"
        r = api.client.post("/v1/events", content=big, headers={
            **api.headers(), "Content-Type": "application/json"})
        assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"

        def chunks():  # no Content-Length: cut off while streaming
            yield b'{"events": ['
            for _ in range(limit // 65536 + 2):
                yield b" " * 65536
            yield b"]}"

        r = api.client.post("/v1/events", content=chunks(), headers={
            **api.headers(), "Content-Type": "application/json"})
        assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"

    def test_500_events_is_fine(self, api: Api) -> None:
        body = api.post_events([track("Try-On Started", "big") for _ in range(500)]).json()
        assert body["inserted"] == 500

    def test_what_postgres_jsonb_refuses_is_rejected_per_event(self, api: Api) -> None:
        # NaN and NUL would fail the whole batch's INSERT on PostgreSQL; here they cost only
        # their own event, on both databases alike.
        nan = {**track("Try-On Started", "s"), "context": {"score": float("nan")}}
        # `source`: an allow-listed key (an unknown one would just be removed)
        nul_prop = track("Try-On Started", "s", source="a\x00b")
        nul_id = track("Try-On Started", "s\x00")
        literal = track("Try-On Started", "s", source="C:\\u0000dir")  # not a NUL
        good = track("Try-On Started", "s")
        # the TestClient's JSON encoder refuses NaN; send the body as raw text
        import json as _json

        body = _json.dumps({"events": [nan, nul_prop, nul_id, literal, good]})
        r = api.client.post("/v1/events", content=body, headers={
            **api.headers(), "Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        res = r.json()["results"]
        assert [x["status"] for x in res] == [
            "rejected", "rejected", "rejected", "accepted", "accepted"]
        assert "NaN" in res[0]["error"]["message"] and "NUL" in res[1]["error"]["message"]

    def test_huge_properties_are_rejected_per_event(self, api: Api) -> None:
        # Allow-listed keys only (an unknown key, or any string over 2000 characters, would be
        # removed with a warning instead): 200 order lines are over the 16 KiB cap.
        lines = [{"sku": f"{i:03d}" + "S" * 60, "variant": "V" * 60, "price": 1}
                 for i in range(200)]
        huge = track("Order Completed", "s", order_id="o-huge", products=lines)
        body = api.post_events([huge, track("Try-On Started", "s")]).json()
        assert [x["status"] for x in body["results"]] == ["rejected", "accepted"]
        assert body["results"][0]["error"]["code"] == "too_large"


MEASURES = {"pd_mm": 63.1, "face_width_mm": 141.0, "size_band": "M",
            "measurements": {"pd_mm": 63.1, "face_width_mm": 141.0}}


class TestConsentAndLandmarks:

    def test_measurements_stripped_without_consent(self, api: Api) -> None:
        no = track("Frame Applied", new_id("c-"), sku="G-1", **MEASURES)
        false = track("Frame Applied", new_id("c-"), sku="G-1", consent=False, **MEASURES)
        body = api.post_events([no, false]).json()
        assert body["inserted"] == 2
        assert "removed face measurements" in body["results"][0]["warnings"][0]
        for row in stored(api, no["message_id"], false["message_id"]):
            assert not set(MEASURES) & set(row.properties), row.properties
            assert row.properties["sku"] == "G-1"

    def test_measurements_kept_with_consent(self, api: Api) -> None:
        yes = track("Frame Applied", new_id("c-"), sku="G-1", consent=True, **MEASURES)
        api.post_events([yes])
        (row,) = stored(api, yes["message_id"])
        assert row.properties["measurements"] == {"pd_mm": 63.1, "face_width_mm": 141.0}
        assert row.properties["face_width_mm"] == 141.0 and row.properties["consent"] is True

    def test_landmark_meshes_never_stored_even_with_consent(self, api: Api) -> None:
        mesh = [[float(i), float(i) + 0.5, 0.1] for i in range(478)]
        ev = track("Frame Applied", new_id("c-"), sku="G-1", consent=True, landmarks=mesh,
                   debug={"face_mesh": mesh, "points": mesh, "ok": 1}, pd_mm=62.0)
        ev["context"] = {"vision": {"landmarks": mesh}}
        body = api.post_events([ev]).json()
        assert body["inserted"] == 1
        assert "landmark" in body["results"][0]["warnings"][0]
        (row,) = stored(api, ev["message_id"])
        assert "landmarks" not in row.properties
        # `debug` is no key of Frame Applied's schema: removed whole (allow-list), warned.
        assert "debug" not in row.properties
        assert "properties.debug" in body["results"][0]["warnings"][-1]
        # An object holding landmarks is removed whole (scrub.py: whatever the shape).
        assert row.context == {}
        assert row.properties["pd_mm"] == 62.0


class TestSink:
    def test_database_sink_from_worker_threads(self, api: Api) -> None:
        sink = DatabaseEventSink(api.sessionmaker, Ingestor(ingest_hooks()))
        batches = [[track("Frame Applied", new_id("w-"), sku=f"G-{i}") for i in range(25)]
                   for _ in range(4)]
        out: list = []
        threads = [threading.Thread(target=lambda b=b: out.append(sink.emit(b))) for b in batches]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(r.inserted for r in out) == [25, 25, 25, 25]
        ids = [e["message_id"] for b in batches for e in b]
        rows = stored(api, *ids)
        assert len(rows) == 100 and {r.source for r in rows} == {"stream"}
        # a replay (a retried flush) stores nothing new
        assert sink.emit(batches[0]).duplicates == 25

    def test_sink_tells_the_batcher_to_retry_when_the_database_is_gone(self, tmp_path) -> None:
        from service.db.engine import make_engine, make_sessionmaker
        from service.touchpoints.sink import SinkUnavailable

        engine = make_engine(f"sqlite:///{tmp_path}/missing-dir/x.sqlite")
        sink = DatabaseEventSink(make_sessionmaker(engine), Ingestor())
        # Not dropped any more: the batcher spools the batch and replays it (test_spool.py).
        with pytest.raises(SinkUnavailable):
            sink.emit([track("Try-On Started", "s")])
        engine.dispose()
