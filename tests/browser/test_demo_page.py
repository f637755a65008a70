"""The shopper page in headless Chromium with a fake camera playing a real face video."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser.conftest import LiveServer, PageWatch, assert_frames_that_fit
from tests.browser.pixels import (
    EYES,
    PAIR_JS,
    Landmarker,
    box,
    decode_b64,
    lips_mask,
    mean_abs_diff,
    mean_color,
)

pytestmark = pytest.mark.browser
WAIT_MS = 30_000
ANALYZE = "/v1/tryon/analyze"
# What the stream may put in its events with the shopper's consent (never landmarks).
MEASUREMENT_KEYS = ("face_width_mm", "pd_mm", "size_band")


@pytest.fixture(scope="module")
def landmarker() -> Iterator[Landmarker]:
    lm = Landmarker()
    yield lm
    lm.close()


@pytest.fixture(scope="module")
def studio(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    """One shopper session for the whole module: consent given, camera streaming.

    The tests below run in file order on it (selecting products, then the cart), which
    keeps one WebSocket warm instead of paying the stream start-up per test.
    """
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=live_server.url,
                              accept_downloads=True)
    page = ctx.new_page()
    watch = PageWatch(live_server.url)
    page.on("request", watch.on_request)
    page.on("console", watch.on_console)
    page.on("response", watch.on_response)
    page.on("pageerror", lambda exc: watch.errors.append(f"pageerror: {exc}"))
    page.watch = watch
    page.server = live_server
    page.api_paths = []  # every request's path, to count what the live session costs
    page.on("request", lambda r: page.api_paths.append(urlsplit(r.url).path))
    page.goto("/demo")
    page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=WAIT_MS)
    yield page
    ctx.close()
    # The stream measures every frame: the live session never pays for /v1/tryon/analyze.
    assert ANALYZE not in page.api_paths, page.api_paths
    # The frames that fit are the server's (GET /v1/products?face_width_mm=...), asked again
    # only when the shown face width moves by a millimetre: a handful, not one per update.
    assert page.api_paths.count("/v1/products") <= 10, page.api_paths
    assert not watch.external, f"page made requests off the service: {watch.external}"
    assert not watch.errors, f"page logged errors: {watch.errors}\n{live_server.log()}"


def wait_applied(page: Any, kind: str, key: str, value: str) -> dict[str, Any]:
    """Wait until a composited frame for this selection (with the overlay drawn) is shown."""
    try:
        page.wait_for_function(
            """([kind, key, value]) => {
                 const m = window.tryon.lastPair?.meta;
                 return m && m.applied && m.selection?.kind === kind
                   && m.selection?.[key] === value;
               }""",
            arg=[kind, key, value], timeout=WAIT_MS,
        )
    except PlaywrightTimeout:
        state = page.evaluate("""() => ({meta: window.tryon.lastPair?.meta,
            selection: window.tryon.selection, stats: window.tryon.stream?.stats,
            open: window.tryon.stream?.isOpen, stage: document.querySelector('#stage-msg')
              .textContent})""")
        stacks = page.server.dump_threads()
        raise AssertionError(f"{kind} {key}={value} never applied; page state: {state}\n"
                             f"service threads:\n{stacks}") from None
    pair = page.evaluate(PAIR_JS)
    assert pair is not None
    return pair


def stream_query(page: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.evaluate("window.tryon.stream.url")).query)


def ended_stream_events(server: LiveServer, anon: str) -> list[tuple[str, dict]]:
    """An ended stream session's own events for this shopper (source 'stream'), once its last
    one (the session-end dwell) is in the store: the service writes them in batches."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        with sqlite3.connect(server.db_path) as db:
            rows = [(e, json.loads(p)) for e, p in db.execute(
                "SELECT event, properties FROM events WHERE anonymous_id = ? AND source = 'stream'",
                (anon,)).fetchall()]
        if any(p.get("session_end") for _, p in rows):
            return rows
        assert time.monotonic() < deadline, f"no session-end event in {rows}\n{server.log()}"
        time.sleep(0.2)


def first_glasses(page: Any) -> dict[str, Any]:
    products = page.evaluate("window.tryon.products")
    assert products, "the rail shows no glasses: is the catalog empty?"
    return products[0]


class TestConsent:
    def test_consent_comes_first_and_nothing_streams_before_it(self, studio: Any) -> None:
        assert studio.is_visible("#consent")
        text = studio.inner_text("#consent")
        assert "never written to disk" in text
        assert "face measurements" in text
        assert not studio.is_visible("#studio")
        # No camera and no socket yet.
        assert studio.evaluate("window.tryon.stream") is None
        assert studio.evaluate("document.querySelector('#cam').srcObject") is None

    def test_opt_in_and_start(self, studio: Any) -> None:
        studio.check("#optin-measurements")
        studio.click("#start")
        studio.wait_for_function("() => window.tryon.frames >= 5", timeout=WAIT_MS)
        assert studio.evaluate("window.tryon.consent.measurements") is True
        # The opt-in travels on the stream URL: the stream's own events may then carry it.
        assert stream_query(studio)["consent"] == ["1"]


class TestLiveStream:
    def test_composited_frames_arrive_and_readout_updates(self, studio: Any) -> None:
        start = studio.evaluate("window.tryon.frames")
        studio.wait_for_function(f"() => window.tryon.frames >= {start + 10}", timeout=WAIT_MS)
        stats = studio.evaluate("window.tryon.stream.stats")
        assert stats["received"] >= 10
        # At most one frame in flight: the client never has more than one unanswered send.
        assert stats["sent"] - stats["received"] <= 1
        assert "fps" in studio.inner_text("#fps") and studio.inner_text("#fps") != "– fps"
        assert studio.inner_text("#latency").endswith("ms")
        # The view is drawn mirrored, at the size of the composited frame.
        view = "document.querySelector('#view')"
        assert studio.evaluate(f"getComputedStyle({view}).transform").startswith("matrix(-1")
        assert studio.evaluate(f"[{view}.width, {view}.height]") == [640, 480]

    def test_glasses_are_visible_on_the_face(self, studio: Any, landmarker: Landmarker,
                                             screenshots: Path) -> None:
        product = first_glasses(studio)
        studio.click(f"#rail-glasses .product[data-sku='{product['sku']}']")
        pair = wait_applied(studio, "glasses", "sku", product["sku"])
        sent, got = decode_b64(pair["sent"]), decode_b64(pair["received"])
        pts = landmarker.points(sent)
        eyes = box(pts, EYES, sent.shape, pad=0.25)
        lips = lips_mask(pts, sent.shape)
        eye_diff = mean_abs_diff(sent, got, eyes)
        lip_diff = mean_abs_diff(sent, got, lips)
        # The frame is drawn over the eyes; the lips are left alone (JPEG noise only).
        assert eye_diff > 12, f"eye region barely changed ({eye_diff:.1f})"
        assert eye_diff > 3 * lip_diff, (eye_diff, lip_diff)
        # The page asked for region replies: the server sent the glasses' box only (a
        # fraction of a frame's bytes), which the page drew over the frame it had sent.
        assert stream_query(studio)["reply"] == ["region"]
        x, y, w, h = pair["meta"]["region"]
        assert w > 0 and h > 0 and w * h < 0.25 * sent.shape[0] * sent.shape[1]
        ey, ex = eyes
        assert x <= ex.start and ex.stop <= x + w + 2 and y <= ey.stop and ey.start <= y + h
        assert got.shape == sent.shape
        studio.screenshot(path=str(screenshots / "demo-glasses.png"))

        # Control: with no product the same measure stays at re-encoding noise.
        studio.click("#clear")
        studio.wait_for_function(
            "() => window.tryon.lastPair?.meta?.selection?.kind === 'none'", timeout=WAIT_MS)
        pair = studio.evaluate(PAIR_JS)
        sent, got = decode_b64(pair["sent"]), decode_b64(pair["received"])
        bare = mean_abs_diff(sent, got, box(landmarker.points(sent), EYES, sent.shape, pad=0.25))
        assert bare < eye_diff / 3, (bare, eye_diff)

    def test_fit_panel_fills_from_the_stream(self, studio: Any) -> None:
        studio.wait_for_function(
            "() => document.querySelector('#fit-pd').textContent.endsWith('mm')", timeout=WAIT_MS)
        # Calm: over the next 30 frames the panel is redrawn about once a second, not per
        # frame, and what it shows lies within what those frames measured (a running median).
        seen = studio.evaluate("""async () => {
          const st = window.tryon.stream;
          const pds = [];
          const onFrame = (ev) => {
            const m = ev.detail.meta?.measurements;
            if (m?.pd_mm != null && m.reliable === window.tryon.fit.reliable) pds.push(m.pd_mm);
          };
          st.addEventListener('frame', onFrame);
          let writes = 0;
          const obs = new MutationObserver((recs) => { writes += recs.length; });
          obs.observe(document.querySelector('#fit-pd'), { childList: true, subtree: true });
          const [f0, u0, t0] = [window.tryon.frames, window.tryon.fitUpdates, performance.now()];
          while (window.tryon.frames < f0 + 30 && performance.now() - t0 < 20000) {
            await new Promise((r) => setTimeout(r, 50));
          }
          obs.disconnect();
          st.removeEventListener('frame', onFrame);
          return { frames: window.tryon.frames - f0, updates: window.tryon.fitUpdates - u0, writes,
                   ms: performance.now() - t0, pds, fit: window.tryon.fit };
        }""")
        assert seen["frames"] >= 30, seen
        calm = seen["ms"] / 1000 + 2  # one a second, plus the first reliable one at once
        assert seen["updates"] <= calm and seen["writes"] <= calm, seen
        pd = float(studio.inner_text("#fit-pd").split()[0])
        width = float(studio.inner_text("#fit-width").split()[0])
        assert 50 <= pd <= 80, pd
        assert 100 <= width <= 220, width  # plausibility only; calibration is tested in vision
        if len(seen["pds"]) >= 10:  # the face stayed in view: a median of frames like these
            assert min(seen["pds"]) - 2 <= pd <= max(seen["pds"]) + 2, (pd, seen["pds"])
        band = studio.inner_text("#fit-size")
        assert band[0] in "SML" and band.endswith("mm)"), band
        # Which frames fit: the catalog's frame widths inside the recommended width band.
        assert_frames_that_fit(studio)
        # All of it from the stream: no /v1/tryon/analyze request during the live session.
        assert studio.api_paths.count(ANALYZE) == 0

    def test_switching_variant_is_a_control_message(self, studio: Any) -> None:
        product = first_glasses(studio)
        if len(product["variants"]) < 2:
            pytest.skip("first product has one variant")
        variant = product["variants"][1]["name"]
        ws_before = studio.evaluate("window.tryon.stream.ws.url")
        studio.click(f".product[data-sku='{product['sku']}'] .variant[data-variant='{variant}']")
        wait_applied(studio, "glasses", "variant", variant)
        assert studio.evaluate("window.tryon.stream.ws.url") == ws_before  # same socket
        # The server's verdict on the selected frame (its `fit.verdict`), shown as sent.
        studio.wait_for_selector("#fit-verdict", state="visible", timeout=WAIT_MS)
        line = studio.inner_text("#fit-verdict")
        assert line.startswith(product["name"]), line
        assert line.rstrip(".").rsplit(": ", 1)[1] in ("good fit", "too narrow", "too wide"), line
        sent = studio.evaluate("window.tryon.fit")
        assert sent["sku"] == product["sku"] and line.endswith(f"{sent['verdict']}."), sent

    def test_controls_go_out_between_frames(self, studio: Any) -> None:
        """Rapid switching: every control message leaves while no frame is in flight (the
        server then never changes the product in the middle of a frame), and the last
        choice wins."""
        skus = [p["sku"] for p in studio.evaluate("window.tryon.products")[:4]]
        log = studio.evaluate("""async (skus) => {
          const st = window.tryon.stream;
          const log = [];
          const send = st.ws.send.bind(st.ws);
          st.ws.send = (data) => {
            if (typeof data === 'string') {
              log.push({ type: JSON.parse(data).type, busy: !!st.inFlight?.blob });
            }
            return send(data);
          };
          for (const sku of skus) {
            document.querySelector(`#rail-glasses .product[data-sku="${sku}"]`).click();
            await new Promise((r) => setTimeout(r, 7));
          }
          await new Promise((r) => setTimeout(r, 300));
          st.ws.send = send;
          return log;
        }""", skus)
        assert log and not [m for m in log if m["busy"]], log
        wait_applied(studio, "glasses", "sku", skus[-1])

    def test_choosing_a_shade_changes_the_lips(self, studio: Any, landmarker: Landmarker,
                                               screenshots: Path) -> None:
        studio.click("#tab-lipstick")
        shades = studio.evaluate("window.tryon.shades")
        assert len(shades) >= 2
        means = []
        for shade in (shades[0], shades[-1]):
            studio.click(f".swatch[data-shade='{shade['id']}']")
            pair = wait_applied(studio, "shade", "shade", shade["id"])
            sent, got = decode_b64(pair["sent"]), decode_b64(pair["received"])
            pts = landmarker.points(sent)
            lips = lips_mask(pts, sent.shape)
            eyes = box(pts, EYES, sent.shape, pad=0.25)
            lip_diff = mean_abs_diff(sent, got, lips)
            assert lip_diff > 6, f"{shade['id']}: lips barely changed ({lip_diff:.1f})"
            assert lip_diff > 2 * mean_abs_diff(sent, got, eyes)
            means.append(mean_color(got, lips))
        # Two different shades give two different lip colours.
        assert float(abs(means[0] - means[1]).max()) > 8, means
        studio.screenshot(path=str(screenshots / "demo-lipstick.png"))

    def test_intensity_slider_reaches_the_stream(self, studio: Any) -> None:
        studio.fill("#intensity", "30")
        studio.wait_for_function(
            "() => Math.abs((window.tryon.lastPair?.meta?.selection?.intensity ?? 0) - 0.3) < 1e-6",
            timeout=WAIT_MS)


class TestCartAndOffers:
    def test_add_to_cart_lands_in_the_event_store(self, studio: Any,
                                                  live_server: LiveServer) -> None:
        studio.click("#tab-glasses")
        product = first_glasses(studio)
        studio.click(f"#rail-glasses .product[data-sku='{product['sku']}']")
        studio.click("#add-to-cart")
        studio.wait_for_function(
            "() => document.querySelector('#cart-msg').dataset.status === 'stored'",
            timeout=WAIT_MS)
        assert "added to your cart" in studio.inner_text("#cart-msg")
        studio.evaluate("window.tryon.events.flush()")
        anon = studio.evaluate("window.tryon.anonymousId")
        with sqlite3.connect(live_server.db_path) as db:
            rows = db.execute(
                "SELECT event, sku, channel, message_id, properties FROM events "
                "WHERE anonymous_id = ?", (anon,)).fetchall()
        events = {r[0] for r in rows}
        added = [r for r in rows if r[0] == "Product Added"]
        assert len(added) == 1 and added[0][1] == product["sku"] and added[0][2] == "web"
        assert len(added[0][3]) >= 32  # the client's UUID is the de-duplication key
        props = json.loads(added[0][4])
        assert props["consent"] is True  # the shopper opted in on the consent screen
        if studio.evaluate("window.tryon.fit?.reliable"):
            assert 100 <= props["face_width_mm"] <= 220 and 50 <= props["pd_mm"] <= 80
        # The stream session logged the try-on itself, through the same ingest path.
        assert {"Try-On Started", "Frame Applied"} <= events, events

    def test_buy_logs_an_order(self, studio: Any, live_server: LiveServer) -> None:
        sku = studio.evaluate("window.tryon.selection.sku")
        studio.click("#buy")
        studio.wait_for_function("() => window.tryon.events.queue.length === 0 "
                                 "&& !window.tryon.events.inflight", timeout=WAIT_MS)
        anon = studio.evaluate("window.tryon.anonymousId")
        with sqlite3.connect(live_server.db_path) as db:
            rows = db.execute("SELECT sku, properties FROM events WHERE anonymous_id = ? AND "
                              "event = 'Order Completed'", (anon,)).fetchall()
        assert len(rows) == 1 and rows[0][0] == sku
        assert '"order_id"' in rows[0][1]

    def test_event_queue_batches_by_count(self, studio: Any, live_server: LiveServer) -> None:
        """The flushAt-th event sends the batch without waiting for the timer. (The outbox's
        bound, retries and offline behaviour: test_touchpoints.py.)"""
        result = studio.evaluate("""async () => {
          const q = window.tryon.events;
          const sent0 = q.sent;
          for (let i = 0; i < q.flushAt; i++) {
            q.track('Snapshot Captured', { source: 'count-test' });
          }
          const t0 = performance.now();
          while (q.sent < sent0 + q.flushAt && performance.now() - t0 < 10000) {
            await new Promise((r) => setTimeout(r, 20));
          }
          const waited = performance.now() - t0;
          return { sent: q.sent - sent0, flushAt: q.flushAt, waited };
        }""")
        assert result["sent"] == result["flushAt"]
        assert result["waited"] < 1500  # well before the 2 s timer
        anon = studio.evaluate("window.tryon.anonymousId")
        with sqlite3.connect(live_server.db_path) as db:
            n, ids = db.execute(
                "SELECT count(*), count(DISTINCT message_id) FROM events WHERE anonymous_id = ? "
                "AND event = 'Snapshot Captured' AND properties LIKE '%count-test%'",
                (anon,)).fetchone()
        assert n == ids == result["flushAt"]

    def test_snapshot_downloads_the_composited_image(self, studio: Any) -> None:
        with studio.expect_download() as dl:
            studio.click("#snapshot")
        path = dl.value.path()
        data = Path(path).read_bytes()
        assert data[:2] == b"\xff\xd8", "snapshot is not a JPEG"

    def test_offers_panel_shows_offers(self, studio: Any, screenshots: Path) -> None:
        studio.evaluate("window.tryon.events.flush()")
        studio.wait_for_function(
            "() => document.querySelectorAll('#offers .offer').length > 0", timeout=WAIT_MS)
        offers = studio.evaluate("window.tryon.offers")
        assert offers and all(o["sku"] and o["reason"] for o in offers)
        studio.locator("#offers").scroll_into_view_if_needed()
        studio.screenshot(path=str(screenshots / "demo-offers.png"))


class TestMeasurementConsent:
    """The stream's own events carry the shopper's measurements only after the opt-in."""

    def test_opted_in_stream_events_carry_measurements(self, studio: Any,
                                                       live_server: LiveServer) -> None:
        assert studio.evaluate("window.tryon.fit?.reliable"), "no reliable measurement yet"
        # Ending the stream writes the session-end dwell, after the reliable measurements.
        studio.evaluate("window.tryon.stream.close()")
        rows = ended_stream_events(live_server, studio.evaluate("window.tryon.anonymousId"))
        measured = [p for _, p in rows if "face_width_mm" in p]
        assert measured, rows
        for p in measured:
            assert p["consent"] is True
            assert 100 <= p["face_width_mm"] <= 220 and 50 <= p["pd_mm"] <= 80, p
            assert not [k for k in p if "landmark" in k], p

    def test_without_opt_in_no_stream_event_carries_measurements(
        self, new_page: Any, live_server: LiveServer
    ) -> None:
        page = new_page()
        page.server = live_server
        page.goto("/demo")
        page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=WAIT_MS)
        page.click("#start")  # opt-in left unticked
        # The stream has measured the face reliably (the panel shows it to the shopper) ...
        page.wait_for_function("() => window.tryon.fit?.reliable", timeout=WAIT_MS)
        assert "consent" not in stream_query(page)
        product = first_glasses(page)
        page.click(f"#rail-glasses .product[data-sku='{product['sku']}']")
        wait_applied(page, "glasses", "sku", product["sku"])
        page.wait_for_timeout(1300)  # shown past the server's minimum dwell: a try-on
        page.evaluate("window.tryon.stream.close()")
        # ... yet none of its events, all written after that, carries a measurement.
        rows = ended_stream_events(live_server, page.evaluate("window.tryon.anonymousId"))
        assert {"Try-On Started", "Frame Applied", "Try-On Dwell"} <= {e for e, _ in rows}, rows
        assert not [p for _, p in rows if any(k in p for k in MEASUREMENT_KEYS)], rows
        assert not [p for _, p in rows if p.get("consent")], rows
