"""Data a product team can trust: one slider drag is at most one try-on, no cart or order
event is lost to 429s, 5xx or a dropped connection, and the fps readout is honest."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import LiveServer, PageWatch
from tests.browser.test_demo_page import ended_stream_events, wait_applied

pytestmark = pytest.mark.browser
WAIT_MS = 30_000
EVENTS = "**/v1/events"


def camera_fps(y4m: Path) -> float:
    """The fake camera's frame rate, from the Y4M header (F<num>:<den>)."""
    header = y4m.open("rb").readline().decode("ascii").split()
    num, den = next(t[1:] for t in header if t.startswith("F")).split(":")
    return int(num) / int(den)


@pytest.fixture(scope="module")
def live(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    """One shopper streaming from the fake camera (no measurement opt-in)."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=live_server.url)
    page = ctx.new_page()
    watch = PageWatch(live_server.url)
    page.on("console", watch.on_console)
    page.on("request", watch.on_request)
    page.on("response", watch.on_response)
    page.server = live_server
    page.goto("/demo")
    page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=WAIT_MS)
    page.click("#start")
    page.wait_for_function("() => window.tryon.frames >= 3", timeout=WAIT_MS)
    yield page
    ctx.close()
    assert not watch.external and not watch.errors, (watch.external, watch.errors)


class TestHonestFrameRate:
    def test_only_new_camera_frames_are_sent_and_fps_is_not_above_the_camera(
        self, live: Any, fake_camera: Path
    ) -> None:
        cam = camera_fps(fake_camera)
        samples = live.evaluate("""async () => {
          const out = [];
          for (let i = 0; i < 8; i++) {
            await new Promise((r) => setTimeout(r, 500));
            const st = window.tryon.stream.stats;
            out.push({ shown: parseFloat(document.querySelector('#fps').textContent),
                       sent: st.sent, camera: st.cameraFrames, cameraFps: st.cameraFps,
                       clock: st.clock });
          }
          return out;
        }""")
        last = samples[-1]
        assert last["clock"] in ("rvfc", "poll"), last
        assert last["sent"] > 10, samples  # it streams
        for s in samples:
            # Every frame sent is a new camera frame: never more sent than the camera gave.
            assert s["sent"] <= s["camera"], samples
            # The readout is new frames processed per second: not above the camera's rate.
            assert s["shown"] <= cam * 1.1 + 1, (cam, samples)
        # The camera really runs at about its file's rate (the check above is not vacuous).
        assert 0.5 * cam <= max(s["cameraFps"] for s in samples) <= cam * 1.25 + 1, (cam, samples)


class TestSliderDrag:
    def test_one_drag_is_a_few_messages_and_at_most_one_try_on(self, live: Any) -> None:
        live.click("#tab-lipstick")
        shade = live.evaluate("window.tryon.shades[0].id")
        live.click(f".swatch[data-shade='{shade}']")
        wait_applied(live, "shade", "shade", shade)
        live.wait_for_timeout(1300)  # shown past the server's minimum dwell: one real try-on
        live.evaluate("""() => {
          const st = window.tryon.stream;
          window.__sent = [];
          window.__inputs = 0;
          const send = st.ws.send.bind(st.ws);
          st.ws.send = (data) => {
            if (typeof data === 'string') window.__sent.push(JSON.parse(data));
            return send(data);
          };
          document.querySelector('#intensity')
            .addEventListener('input', () => { window.__inputs += 1; });
        }""")
        bb = live.locator("#intensity").bounding_box()
        assert bb
        y = bb["y"] + bb["height"] / 2
        # A real drag with the mouse: from 80 % down to 20 % and back up to 55 %, slowly.
        live.mouse.move(bb["x"] + bb["width"] * 0.8, y)
        live.mouse.down()
        live.mouse.move(bb["x"] + bb["width"] * 0.2, y, steps=40)
        live.mouse.move(bb["x"] + bb["width"] * 0.55, y, steps=30)
        live.mouse.up()
        live.wait_for_timeout(600)
        sent = live.evaluate("window.__sent")
        inputs = live.evaluate("window.__inputs")
        final = live.evaluate("window.tryon.selection.intensity")
        intensity = [m for m in sent if m["type"] == "intensity"]
        assert inputs >= 20, inputs  # it was a drag: many input events
        assert 1 <= len(intensity) <= 3, (inputs, sent)  # debounced: a few messages
        assert intensity[-1]["value"] == final
        assert not [m for m in sent if m["type"] in ("shade", "select")], sent
        live.wait_for_function(
            "(v) => Math.abs((window.tryon.lastPair?.meta?.selection?.intensity ?? -1) - v) < 1e-6",
            arg=final, timeout=WAIT_MS)
        live.wait_for_timeout(300)
        live.evaluate("window.tryon.stream.close()")
        rows = ended_stream_events(live.server, live.evaluate("window.tryon.anonymousId"))
        applied = [p for e, p in rows if e == "Shade Applied" and p.get("shade") == shade]
        dwell = [p for e, p in rows if e == "Try-On Dwell" and p.get("shade") == shade]
        # The server decides what a try-on is: the drag adjusted the one shade being tried.
        assert len(applied) <= 1, applied
        assert len(dwell) <= 1, dwell


# ---- the outbox --------------------------------------------------------------------------

OUTBOX_COUNT_JS = """() => new Promise((resolve) => {
  const r = indexedDB.open('tryon-outbox');
  r.onsuccess = () => {
    const q = r.result.transaction('pending').objectStore('pending').count();
    q.onsuccess = () => { resolve(q.result); r.result.close(); };
  };
})"""


def click_and_read(page: Any, selector: str) -> dict[str, str]:
    """Click a cart/order button; the message once the page says the event is safe."""
    page.click(selector)
    page.wait_for_function(
        "() => ['stored', 'queued'].includes(document.querySelector('#cart-msg').dataset.status)",
        timeout=WAIT_MS)
    return page.evaluate("""() => { const m = document.querySelector('#cart-msg');
      return { status: m.dataset.status, id: m.dataset.messageId, text: m.textContent }; }""")


def stored(server: LiveServer, anon: str) -> list[tuple[str, str]]:
    with sqlite3.connect(server.db_path) as db:
        return db.execute(
            "SELECT event, message_id FROM events WHERE anonymous_id = ? AND event IN "
            "('Product Added', 'Order Completed')", (anon,)).fetchall()


class TestOutbox:
    def test_offline_and_429_lose_no_cart_or_order_event(
        self, new_page: Any, live_server: LiveServer
    ) -> None:
        page = new_page()
        page.goto("/demo")
        page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=WAIT_MS)
        page.click("#use-photo")  # no camera needed to shop
        skus = page.evaluate("window.tryon.products.slice(0, 2).map((p) => p.sku)")
        anon = page.evaluate("window.tryon.anonymousId")
        clicks: list[dict[str, str]] = []

        # 1. The service answers 429 (Retry-After: 1) twice, then stores the batch but the
        #    answer is lost (503 on the way back), then answers normally: "duplicate".
        seen: list[int] = []

        def flaky(route: Any) -> None:
            seen.append(1)
            if len(seen) <= 2:
                route.fulfill(status=429, headers={"Retry-After": "1"},
                              json={"error": {"code": "rate_limited", "message": "slow down"}})
            elif len(seen) == 3:
                route.fetch()  # reaches the service, which stores it ...
                route.fulfill(status=503, json={"error": {"code": "unavailable"}})  # ... lost
            else:
                route.continue_()

        page.route(EVENTS, flaky)
        page.click(f"#rail-glasses .product[data-sku='{skus[0]}']")
        clicks.append(click_and_read(page, "#add-to-cart"))
        assert clicks[-1]["status"] == "queued", clicks  # not on the server yet: said so
        assert "added to your cart" in clicks[-1]["text"]
        assert "Saved on this device" in clicks[-1]["text"]
        page.wait_for_function("() => window.tryon.events.queue.length === 0", timeout=WAIT_MS)
        assert len(seen) >= 4, seen
        assert page.evaluate("window.tryon.events.retries") >= 3
        page.unroute(EVENTS)

        # 2. Offline: the clicks are kept on disk (IndexedDB) and the page says so.
        page.context.set_offline(True)
        page.click(f"#rail-glasses .product[data-sku='{skus[1]}']")
        clicks.append(click_and_read(page, "#add-to-cart"))
        clicks.append(click_and_read(page, "#buy"))
        assert [c["status"] for c in clicks[1:]] == ["queued", "queued"], clicks
        assert page.evaluate(OUTBOX_COUNT_JS) >= 2

        # 3. Back online but the service unreachable, and the page reloaded: the outbox
        #    survives the reload and drains once the service answers again.
        page.route(EVENTS, lambda route: route.abort("connectionrefused"))
        page.context.set_offline(False)
        page.reload()
        page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=WAIT_MS)
        page.wait_for_function("() => window.tryon.events.queue.length >= 2", timeout=WAIT_MS)
        page.unroute(EVENTS)
        page.wait_for_function("() => window.tryon.events.queue.length === 0", timeout=WAIT_MS)
        assert page.evaluate(OUTBOX_COUNT_JS) == 0

        rows = stored(live_server, anon)
        ids = [m for _, m in rows]
        # Every click arrived, exactly once (the retried batch was a "duplicate", not a row).
        assert sorted(ids) == sorted(c["id"] for c in clicks), (rows, clicks)
        assert sorted(e for e, _ in rows) == ["Order Completed", "Product Added", "Product Added"]
        # The console shows the refused and failed requests: that was the point.
        page.watch.errors[:] = [e for e in page.watch.errors if not (
            "/v1/events" in e or "Failed to load resource" in e or "ERR_" in e)]

    def test_bound_drops_only_automatic_events(self, new_page: Any) -> None:
        page = new_page()
        page.goto("/demo")
        page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=WAIT_MS)
        result = page.evaluate("""async () => {
          const q = window.tryon.events;
          q.queueMax = 5;
          q.flushAt = 1000;
          q.track('Product Added', { sku: 'X-1' });
          for (let i = 0; i < 8; i++) q.track('Try-On Dwell', { sku: 'X-1', dwell_ms: 1000 });
          const kept = q.queue.map((r) => r.event.event);
          await q.flush();
          const t0 = performance.now();
          while (q.queue.length && performance.now() - t0 < 10000) {
            await new Promise((r) => setTimeout(r, 50));
          }
          return { kept, dropped: q.dropped, left: q.queue.length };
        }""")
        assert result["kept"][0] == "Product Added" and len(result["kept"]) == 5, result
        assert result["dropped"] == 4 and result["left"] == 0, result
