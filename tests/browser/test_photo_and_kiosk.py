"""Photo-upload fallback (camera refused) and kiosk mode (touch UI, QR hand-off, idle reset)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import cv2
import numpy as np
import pytest

from tests.browser.conftest import LiveServer, assert_frames_that_fit, docs_copy
from tests.browser.pixels import EYES, Landmarker, box, lips_mask, mean_abs_diff, page_image
from tests.qr import decode_qr as decode_qr_image

pytestmark = pytest.mark.browser
WAIT_MS = 30_000
REFUSE_CAMERA = """
  navigator.mediaDevices.getUserMedia = () =>
    Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
"""


@pytest.fixture(scope="module")
def landmarker() -> Iterator[Landmarker]:
    lm = Landmarker()
    yield lm
    lm.close()


class TestPhotoFallback:
    def test_refused_camera_offers_upload_and_renders_glasses(
        self, new_page: Any, shared_data: Path, landmarker: Landmarker, screenshots: Path,
        live_server: LiveServer,
    ) -> None:
        page = new_page()
        page.add_init_script(REFUSE_CAMERA)
        page.goto("/demo")
        page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=WAIT_MS)
        page.click("#start")
        page.wait_for_selector("#photo-fallback", state="visible")
        assert "permission was refused" in page.inner_text("#photo-reason")
        assert page.evaluate("window.tryon.stream") is None  # no socket without a camera

        page.set_input_files("#photo-input", str(shared_data / "faces/photos/astronaut.png"))
        page.wait_for_function("() => window.tryon.frames >= 1 && window.tryon.lastMeta",
                               timeout=WAIT_MS)
        plain = page_image(page, "tryon.lastImage")

        sku = page.evaluate("window.tryon.products[0].sku")
        page.click(f"#rail-glasses .product[data-sku='{sku}']")
        page.wait_for_function(
            """(sku) => window.tryon.lastMeta?.applied
                 && window.tryon.lastMeta.selection?.sku === sku""",
            arg=sku, timeout=WAIT_MS)
        with_glasses = page_image(page, "tryon.lastImage")
        # No stream session here, so the page itself logs the try-on (for analytics).
        page.evaluate("window.tryon.events.flush()")
        with sqlite3.connect(live_server.db_path) as db:
            logged = db.execute(
                "SELECT event FROM events WHERE anonymous_id = ? AND sku = ?",
                (page.evaluate("window.tryon.anonymousId"), sku)).fetchall()
        assert ("Frame Applied",) in logged

        pts = landmarker.points(plain)
        eyes = box(pts, EYES, plain.shape, pad=0.25)
        eye_diff = mean_abs_diff(plain, with_glasses, eyes)
        lip_diff = mean_abs_diff(plain, with_glasses, lips_mask(pts, plain.shape))
        assert eye_diff > 12 and eye_diff > 3 * lip_diff, (eye_diff, lip_diff)
        # The photo is shown as taken (not mirrored), and measured.
        assert "mirrored" not in page.get_attribute("#view", "class")
        # Measured only when the service trusts the photo's measurement; else it says why.
        page.wait_for_function(
            "() => document.querySelector('#fit-pd').textContent.endsWith('mm')"
            " || document.querySelector('#fit-frames').textContent.startsWith('Not measured')",
            timeout=WAIT_MS)
        measured = page.evaluate("window.tryon.lastMeta.measurements")
        if measured and measured.get("reliable"):
            assert assert_frames_that_fit(page)  # this face's band holds catalog frames
        else:
            assert measured and measured["quality_flags"], measured
            assert page.inner_text("#fit-pd") == "–"
            assert page.inner_text("#fit-frames").startswith("Not measured: "), measured
        page.screenshot(path=str(screenshots / "demo-photo.png"))
        # The README shows this one: a public-domain photo (NASA), not third-party video.
        docs_copy(screenshots / "demo-photo.png", "demo.png")


HANDOFF_VIEW_JS = """() => {
  const box = (e) => { const r = e.getBoundingClientRect();
    return { x: r.x, y: r.y, w: r.width, h: r.height }; };
  const root = document.querySelector('#from-kiosk');
  const skus = (sel) => [...document.querySelectorAll(sel)].map((li) => li.dataset.sku);
  const toast = document.querySelector('#toast');
  return {
    visible: !root.hidden && root.open, box: box(root), vh: innerHeight,
    tried: skus('#from-kiosk-tried li[data-sku]'),
    triedText: [...document.querySelectorAll('#from-kiosk-tried li')].map((li) => li.textContent),
    cart: skus('#from-kiosk-cart li[data-sku]'),
    toast: toast.hidden ? null : box(toast),
    buttons: [...document.querySelectorAll('button, label.btn')].filter((b) => b.offsetParent)
      .map(box),
  };
}"""


def overlaps(a: dict, b: dict) -> bool:
    return (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
            and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])


def decode_qr(png: bytes) -> str:
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    text = decode_qr_image(img)
    assert text, "QR code did not decode"
    return text


class TestKiosk:
    def test_touch_ui_handoff_qr_and_idle_reset(
        self, new_page: Any, live_server: LiveServer, screenshots: Path
    ) -> None:
        kiosk = new_page(viewport=(1366, 768), has_touch=True)
        kiosk.goto("/demo?mode=kiosk&idle=5&kiosk=K-7&store=S-1")
        kiosk.wait_for_function("() => document.body.dataset.ready === '1'", timeout=WAIT_MS)
        assert "kiosk" in kiosk.get_attribute("body", "class")
        # Large touch targets: every visible button on the start screen is at least 56 px tall.
        heights = kiosk.evaluate(
            "[...document.querySelectorAll('#consent button')].map(b => b.offsetHeight)")
        assert heights and min(heights) >= 56, heights

        kiosk.tap("#start")
        kiosk.wait_for_function("() => window.tryon.frames >= 3", timeout=WAIT_MS)
        sku = kiosk.evaluate("window.tryon.products[1].sku")
        kiosk.tap(f"#rail-glasses .product[data-sku='{sku}']")
        kiosk.wait_for_function(
            "(sku) => window.tryon.lastPair?.meta?.selection?.sku === sku", arg=sku,
            timeout=WAIT_MS)
        kiosk.wait_for_timeout(1500)  # shown past the server's minimum dwell: a try-on
        kiosk.tap("#add-to-cart")
        kiosk.wait_for_function(
            "() => document.querySelector('#cart-msg').dataset.status === 'stored'",
            timeout=WAIT_MS)
        kiosk.screenshot(path=str(screenshots / "kiosk-studio.png"))
        card_h = kiosk.evaluate(f"document.querySelector(\".product[data-sku='{sku}']\")"
                                ".offsetHeight")
        assert card_h >= 64, card_h
        kiosk_anon = kiosk.evaluate("window.tryon.anonymousId")

        kiosk.tap("#finish")
        kiosk.wait_for_selector("#handoff", state="visible")
        kiosk.wait_for_function(
            "() => document.querySelector('#handoff-qr').naturalWidth > 0", timeout=WAIT_MS)
        token = kiosk.evaluate("window.tryon.handoff.token")
        url = decode_qr(kiosk.locator("#handoff-qr").screenshot())
        assert parse_qs(urlsplit(url).query)["handoff"] == [token]
        kiosk.screenshot(path=str(screenshots / "kiosk-handoff.png"))
        docs_copy(screenshots / "kiosk-handoff.png", "kiosk.png")

        # The phone opens the QR's link and claims the kiosk session.
        phone = new_page(viewport=(390, 844), is_mobile=True, has_touch=True)
        parts = urlsplit(url)
        phone.goto(f"{parts.path}?{parts.query}")
        phone.wait_for_function("() => document.body.dataset.ready === '1'", timeout=WAIT_MS)
        assert phone.evaluate("window.tryon.claimed") == token
        phone_anon = phone.evaluate("window.tryon.anonymousId")
        assert "handoff" not in phone.evaluate("location.search")  # single use: dropped
        # At once, above the consent screen (not behind it): what was tried and carted at the
        # kiosk; no toast over a button.
        shown = phone.evaluate(HANDOFF_VIEW_JS)
        assert shown["visible"] and shown["box"]["y"] + 40 <= shown["vh"], shown
        assert phone.is_visible("#consent")
        for b in shown["buttons"]:
            assert not shown["toast"] or not overlaps(shown["toast"], b), shown
        phone.screenshot(path=str(screenshots / "phone-after-handoff.png"))
        docs_copy(screenshots / "phone-after-handoff.png", "phone-handoff.png")
        claim = phone.evaluate("window.tryon.claim")

        with sqlite3.connect(live_server.db_path) as db:
            kiosk_events = db.execute(
                "SELECT event, channel, store_id FROM events WHERE kiosk_id = 'K-7' "
                "AND anonymous_id = ?", (kiosk_anon,)).fetchall()
            links = db.execute(
                "SELECT shopper_id, alias_id FROM shopper_aliases").fetchall()
        assert {e[0] for e in kiosk_events} >= {"Try-On Started", "Frame Applied"}
        assert all(e[1] == "kiosk" and e[2] == "S-1" for e in kiosk_events)
        assert tuple(sorted((kiosk_anon, phone_anon))) in {tuple(sorted(x)) for x in links}

        if "shortlist" not in claim:
            pytest.xfail(f"the claim answer has no kiosk shortlist yet: {claim}")
        assert sku in shown["tried"], shown  # the frame tried at the kiosk, with its dwell
        assert [t for t in shown["triedText"] if "tried" in t and " s" in t], shown
        assert sku in shown["cart"], shown

        # Left alone, the kiosk starts over for the next shopper.
        kiosk.wait_for_function("() => window.tryon.resets === 1", timeout=15_000)
        assert kiosk.is_visible("#consent") and not kiosk.is_visible("#handoff")
        assert kiosk.evaluate("window.tryon.anonymousId") != kiosk_anon
        assert kiosk.evaluate("window.tryon.lastImage") is None
