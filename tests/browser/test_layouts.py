"""The shopper page's layout in the real browser at a phone, a laptop and a portrait kiosk:
the tool buttons never cover the face, the face is never cropped, and a portrait kiosk gives
the picture most of its height. Screenshots for docs/demo.md (TRYON_UPDATE_DOCS=1).

The photo path with the public-domain NASA portrait is used, so the screenshots may go in the
docs (the shared videos are for tests only)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import docs_copy
from tests.browser.pixels import Landmarker, page_image

pytestmark = pytest.mark.browser
WAIT_MS = 30_000
PHOTO = "faces/photos/astronaut.png"

# The drawn picture's rectangle on screen (the canvas is object-fit: contain) and the boxes of
# the tool buttons, in CSS pixels of the viewport.
GEOMETRY_JS = """() => {
  const v = document.querySelector('#view');
  const r = v.getBoundingClientRect();
  const s = Math.min(r.width / v.width, r.height / v.height);
  const w = v.width * s, h = v.height * s;
  const drawn = { x: r.x + (r.width - w) / 2, y: r.y + (r.height - h) / 2, w, h };
  const stage = document.querySelector('.stage').getBoundingClientRect();
  const buttons = ['#snapshot', '#photo-change'].map((sel) => {
    const b = document.querySelector(sel);
    if (!b || b.hidden || !b.offsetParent) return null;
    const q = b.getBoundingClientRect();
    return { sel, x: q.x, y: q.y, w: q.width, h: q.height };
  }).filter(Boolean);
  return { drawn, stage: { x: stage.x, y: stage.y, w: stage.width, h: stage.height },
           buttons, vw: innerWidth, vh: innerHeight,
           mirrored: v.classList.contains('mirrored'), img: [v.width, v.height] };
}"""

VIEWPORTS = {
    "phone": dict(viewport=(390, 844), is_mobile=True, has_touch=True, url="/demo"),
    "laptop": dict(viewport=(1280, 800), url="/demo"),
    "kiosk-portrait": dict(viewport=(1080, 1400), has_touch=True, url="/demo?mode=kiosk"),
}


@pytest.fixture(scope="module")
def landmarker() -> Iterator[Landmarker]:
    lm = Landmarker()
    yield lm
    lm.close()


def overlaps(a: dict[str, float], b: dict[str, float]) -> bool:
    return (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
            and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])


def face_on_screen(page: Any, landmarker: Landmarker, geo: dict[str, Any]) -> dict[str, float]:
    """The face (all landmarks of the composited picture, chin included) in viewport px."""
    img = page_image(page, "tryon.lastImage")
    pts = landmarker.points(img)
    h, w = img.shape[:2]
    d = geo["drawn"]
    sx, sy = d["w"] / w, d["h"] / h
    xs = (w - pts[:, 0]) if geo["mirrored"] else pts[:, 0]
    return {"x": d["x"] + xs.min() * sx, "y": d["y"] + pts[:, 1].min() * sy,
            "w": (xs.max() - xs.min()) * sx, "h": (pts[:, 1].max() - pts[:, 1].min()) * sy}


@pytest.mark.parametrize("name", list(VIEWPORTS))
def test_layout(name: str, new_page: Any, shared_data: Path, landmarker: Landmarker,
                screenshots: Path) -> None:
    cfg = dict(VIEWPORTS[name])
    url = cfg.pop("url")
    page = new_page(**cfg)
    page.goto(url)
    page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=WAIT_MS)
    page.click("#use-photo")
    page.set_input_files("#photo-input", str(shared_data / PHOTO))
    page.wait_for_function("() => window.tryon.frames >= 1 && window.tryon.lastMeta",
                           timeout=WAIT_MS)
    sku = page.evaluate("window.tryon.products[0].sku")
    page.click(f"#rail-glasses .product[data-sku='{sku}']")
    page.wait_for_function(
        "(sku) => window.tryon.lastMeta?.applied && window.tryon.lastMeta.selection?.sku === sku",
        arg=sku, timeout=WAIT_MS)
    page.wait_for_timeout(300)  # the decoded picture drawn
    page.evaluate("window.scrollTo(0, 0)")
    geo = page.evaluate(GEOMETRY_JS)
    d, vw, vh = geo["drawn"], geo["vw"], geo["vh"]
    face = face_on_screen(page, landmarker, geo)

    # The whole picture is on screen at first sight (nothing cropped), and so is the face.
    assert d["x"] >= -0.5 and d["x"] + d["w"] <= vw + 0.5, geo
    assert d["y"] >= 0 and d["y"] + d["h"] <= vh + 0.5, geo
    st = geo["stage"]
    assert st["y"] - 0.5 <= d["y"] and d["y"] + d["h"] <= st["y"] + st["h"] + 0.5, geo
    assert face["y"] >= d["y"] - 1 and face["y"] + face["h"] <= d["y"] + d["h"] + 1, (face, geo)
    # The Snapshot / Change-photo buttons are visible and cover no part of the face (nor the
    # picture's central region, where a face sits).
    assert {b["sel"] for b in geo["buttons"]} == {"#snapshot", "#photo-change"}, geo
    centre = {"x": d["x"] + d["w"] * 0.2, "y": d["y"] + d["h"] * 0.1,
              "w": d["w"] * 0.6, "h": d["h"] * 0.9}
    for b in geo["buttons"]:
        assert not overlaps(b, face), (b, face)
        assert not overlaps(b, centre), (b, centre)
        assert b["y"] + b["h"] <= vh, b  # reachable without scrolling
    if name == "kiosk-portrait":
        assert d["h"] >= 0.55 * vh, (d, vh)  # the picture uses most of the height
    if name == "phone":
        assert d["w"] >= vw - 1, (d, vw)  # full width

    shot = screenshots / f"layout-{name}.png"
    page.screenshot(path=str(shot))
    docs_copy(shot, f"layout-{name}.png")
