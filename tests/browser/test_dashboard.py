"""The product-team dashboard in headless Chromium over analytics seeded through the ingest API."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import LiveServer, docs_copy

pytestmark = pytest.mark.browser
WAIT_MS = 30_000
STORE = f"dash-{uuid.uuid4().hex[:8]}"  # our rows only: the demo tests share this database
# 175 mm wants a 157.5 mm frame: none in the catalog (the widest is under 150 mm).
FACE_WIDTHS = {"s1": 152.0, "s2": 153.0, "s3": 175.0}


def _ev(event: str, shopper: str, t: datetime, channel: str = "web", **props: Any) -> dict:
    return {
        "message_id": uuid.uuid4().hex, "event": event, "anonymous_id": f"{STORE}-{shopper}",
        "channel": channel, "store_id": STORE, "timestamp": t.isoformat(), "properties": props,
    }


def seed_events() -> list[dict]:
    """A small hand-checkable history.

    RND-47: tried by s1, s2, s3 (web); carted by s1, s2; ordered by s1; dwell 10/20/30 s.
    REC-M: tried by s4 (kiosk), nothing else. Shades (a lipstick's sku is its shade):
    classic-red tried by s1, s2, s3, carted and ordered by s1 (24 EUR); nude-rose by s4.
    All products: 8 try-ons, 3 carted, 2 ordered, revenue 129 + 24 = 153 EUR.
    NPS: web 10, 9, 3 -> 33.3; kiosk 10 -> 100; app 0 -> -100;
    all: 3 promoters, 2 detractors of 5 -> 20.
    """
    t0 = datetime.now(UTC) - timedelta(hours=3)
    m = timedelta(minutes=1)
    ev = []
    for i, s in enumerate(("s1", "s2", "s3")):
        ev.append(_ev("Try-On Started", s, t0 + i * m, product_type="glasses", sku="RND-47",
                      consent=True, face_width_mm=FACE_WIDTHS[s]))
        ev.append(_ev("Frame Applied", s, t0 + i * m + m / 10, sku="RND-47", variant="gold"))
        ev.append(_ev("Try-On Dwell", s, t0 + i * m + m / 2, sku="RND-47", variant="gold",
                      dwell_ms=10_000 * (i + 1)))
        ev.append(_ev("Shade Applied", s, t0 + i * m + m / 3, shade="classic-red"))
    ev.append(_ev("Product Added", "s1", t0 + 10 * m, sku="RND-47", price=129.0, currency="EUR"))
    ev.append(_ev("Product Added", "s2", t0 + 11 * m, sku="RND-47", price=129.0, currency="EUR"))
    ev.append(_ev("Order Completed", "s1", t0 + 20 * m, sku="RND-47", order_id="o-1",
                  price=129.0, currency="EUR"))
    ev.append(_ev("Product Added", "s1", t0 + 12 * m, shade="classic-red", price=24.0,
                  currency="EUR"))
    ev.append(_ev("Order Completed", "s1", t0 + 21 * m, shade="classic-red", order_id="o-2",
                  price=24.0, currency="EUR"))
    ev.append(_ev("Frame Applied", "s4", t0 + 30 * m, "kiosk", sku="REC-M", variant="black"))
    ev.append(_ev("Shade Applied", "s4", t0 + 31 * m, "kiosk", shade="nude-rose", consent=True,
                  monk_index=8))
    for s, score, ch in (("s1", 10, "web"), ("s2", 9, "web"), ("s3", 3, "web"),
                         ("s4", 10, "kiosk"), ("s5", 0, "app")):
        ev.append(_ev("Feedback Submitted", s, t0 + 40 * m, ch, nps=score))
    return ev


@pytest.fixture(scope="module")
def seeded(live_server: LiveServer, api_keys: dict[str, str]) -> None:
    r = httpx.post(f"{live_server.url}/v1/events", json={"batch": seed_events()},
                   headers={"Authorization": f"Bearer {api_keys['kiosk']}"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["rejected"] == 0, body


def cells(page: Any, sku: str) -> dict[str, str]:
    return page.evaluate(
        """(sku) => Object.fromEntries([...document.querySelectorAll(
             `#table-products tr[data-sku="${sku}"] td[data-col]`)]
             .map((td) => [td.dataset.col, td.textContent]))""", sku)


def bars(page: Any, chart: str) -> dict[str, float]:
    return page.evaluate(
        """(sel) => Object.fromEntries([...document.querySelectorAll(`${sel} g[data-label]`)]
             .map((g) => [g.dataset.label, Number(g.dataset.value)]))""", chart)


SKUS_JS = "[...document.querySelectorAll('#table-products tbody tr')].map((r) => r.dataset.sku)"
# Every text of a chart: its box in the SVG's own units, and the SVG's width.
TEXT_BOXES_JS = """(sel) => {
  const svg = document.querySelector(`${sel} svg`);
  if (!svg) return [];
  const svgW = svg.viewBox.baseVal.width;
  return [...svg.querySelectorAll('text')].map((t) => {
    const b = t.getBBox();
    return { text: t.textContent, x: b.x, y: b.y, w: b.width, h: b.height, svgW };
  });
}"""


def overlaps(a: dict, b: dict) -> bool:
    return (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
            and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])


def apply_filters(page: Any, **values: str) -> None:
    before = page.evaluate("document.body.dataset.loaded")
    for sel, v in values.items():
        if sel in ("f-channel", "f-type"):
            page.select_option(f"#{sel}", v)
        else:
            page.fill(f"#{sel}", v)
    page.click("#filters button[type=submit]")
    page.wait_for_function("(b) => document.body.dataset.loaded !== b", arg=before,
                           timeout=WAIT_MS)


class TestDashboard:
    def test_wrong_key_is_refused(self, new_page: Any, seeded: None,
                                  api_keys: dict[str, str]) -> None:
        page = new_page()
        page.goto("/dashboard")
        page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=WAIT_MS)
        page.fill("#key", api_keys["kiosk"])  # a real key, but without the analyst scope
        page.click("#key-form button")
        page.wait_for_function(
            "() => document.querySelector('#welcome p').textContent.includes('refused')",
            timeout=WAIT_MS)
        assert page.is_hidden("#board")
        assert page.evaluate("sessionStorage.getItem('tryon.analyst_key')") is None
        # The 403s are the point here (the board asks for several reports at once). Chromium
        # reports each on the console asynchronously: wait until the requests have settled and
        # no new report arrived for half a second, then clear them.
        page.wait_for_load_state("networkidle")
        seen, quiet = -1, 0
        for _ in range(100):
            n = len(page.watch.errors)
            quiet = quiet + 1 if n == seen else 0
            seen = n
            if quiet >= 10 and n:
                break
            page.wait_for_timeout(50)
        assert all("403" in e for e in page.watch.errors), page.watch.errors
        page.watch.errors.clear()

    def test_seeded_numbers_render(self, new_page: Any, seeded: None, api_keys: dict[str, str],
                                   screenshots: Path) -> None:
        page = new_page(viewport=(1280, 900))
        page.goto("/dashboard")
        page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=WAIT_MS)
        page.fill("#key", api_keys["analyst"])
        page.click("#key-form button")
        page.wait_for_function("() => document.body.dataset.loaded", timeout=WAIT_MS)
        assert page.evaluate("sessionStorage.getItem('tryon.analyst_key')") == api_keys["analyst"]
        today = datetime.now(UTC).date()
        apply_filters(page, **{"f-store": STORE, "f-start": str(today - timedelta(days=1)),
                               "f-end": str(today)})

        rnd = cells(page, "RND-47")
        assert rnd == {"try_ons": "3", "unique_shoppers": "3", "carted": "2", "ordered": "1",
                       "cart_rate": "66.7%", "order_rate": "33.3%", "dwell_median": "20.0 s",
                       "dwell_p90": rnd["dwell_p90"]}
        assert 20.0 < float(rnd["dwell_p90"].split()[0]) <= 30.0
        assert cells(page, "REC-M")["try_ons"] == "1"
        red = cells(page, "classic-red")  # lipstick sales count like any product's
        assert (red["try_ons"], red["carted"], red["ordered"]) == ("3", "1", "1"), red
        assert page.inner_text("#kpi-tryons") == "8"
        assert page.inner_text("#kpi-carted") == "3"
        assert page.inner_text("#kpi-ordered") == "2"
        assert page.inner_text("#kpi-conv") == "25.0%"
        assert page.inner_text("#kpi-nps") == "20"
        # Revenue (the funnel's totals): s1's RND-47 order 129 + classic-red order 24 EUR.
        assert page.is_visible("#kpi-revenue")
        assert page.inner_text("#kpi-revenue").replace("\u00a0", " ") in ("€153.00", "153,00 €")

        products = bars(page, "#chart-products")
        assert sorted(products.values()) == [1, 1, 3, 3]
        assert bars(page, "#chart-funnel") == {"Tried on": 8, "Added to cart": 3, "Ordered": 2}
        shades = bars(page, "#chart-shades")
        assert sorted(shades.values()) == [1, 3]
        assert max(shades, key=shades.get) in ("Classic Red", "classic-red")  # name if catalogued
        page.check("#shade-by-tone")  # the one shopper with a known skin tone: MST 8-10
        page.wait_for_function(
            "() => [...document.querySelectorAll('#chart-shades g[data-label]')]"
            ".some((g) => g.dataset.label.startsWith('MST 8-10'))", timeout=WAIT_MS)
        by_tone = bars(page, "#chart-shades")
        assert [v for k, v in by_tone.items() if k.startswith("MST 8-10")] == [1]
        before = page.evaluate("document.body.dataset.loaded")
        page.uncheck("#shade-by-tone")
        page.wait_for_function("(b) => document.body.dataset.loaded !== b", arg=before,
                               timeout=WAIT_MS)
        nps = bars(page, "#chart-nps")
        assert nps["kiosk"] == 100 and nps["all"] == 20 and abs(nps["web"] - 100 / 3) < 1e-6
        assert nps["app"] == -100
        # Layout: no chart text is cut off or drawn over another (the funnel's labels, NPS -100
        # next to its channel's name).
        for chart in ("#chart-funnel", "#chart-nps", "#chart-products", "#chart-shades"):
            texts = page.evaluate(TEXT_BOXES_JS, chart)
            for t in texts:
                assert t["x"] >= -0.5 and t["x"] + t["w"] <= t["svgW"] + 0.5, (chart, t)
            for i, a in enumerate(texts):
                for b in texts[i + 1:]:
                    assert not overlaps(a, b), (chart, a, b)
        assert not page.locator("#chart-funnel text.inbar").count()  # no white-on-white

        # Fit gap: three consented widths; the 175 mm shopper is in a bin no frame fits.
        bins = page.evaluate("""[...document.querySelectorAll('#chart-fitgap g.bin')]
            .map((g) => ({lo: +g.dataset.lo, hi: +g.dataset.hi, n: +g.dataset.value,
                          gap: g.dataset.gap === '1'}))""")
        assert sum(b["n"] for b in bins) == 3
        gap_bins = [b for b in bins if b["gap"] and b["n"]]
        assert len(gap_bins) == 1 and gap_bins[0]["lo"] <= 175 < gap_bins[0]["hi"]
        assert page.locator("#chart-fitgap line.frame-tick").count() >= 10  # catalog frames
        # One shopper is no evidence: the gap is shown with its sample size, no design advice.
        gaps = page.inner_text("#fitgap-gaps")
        assert "n = 1" in gaps and "no recommendation" in gaps, gaps
        page.screenshot(path=str(screenshots / "dashboard.png"), full_page=True)
        docs_copy(screenshots / "dashboard.png", "dashboard.png")

        # Product type: lipstick only, then glasses only (passed to the analytics API).
        apply_filters(page, **{"f-type": "lipstick"})
        assert sorted(page.evaluate(SKUS_JS)) == ["classic-red", "nude-rose"]
        assert page.inner_text("#kpi-ordered") == "1"
        assert page.inner_text("#kpi-revenue").replace("\u00a0", " ") in ("€24.00", "24,00 €")
        apply_filters(page, **{"f-type": "glasses"})
        assert sorted(page.evaluate(SKUS_JS)) == ["REC-M", "RND-47"]
        assert page.inner_text("#kpi-ordered") == "1"
        assert page.inner_text("#kpi-revenue").replace("\u00a0", " ") in ("€129.00", "129,00 €")
        assert page.inner_text("#kpi-nps") == "20"  # NPS has no product type

        # Channel filter: kiosk only. The NPS tile stays the one over all channels.
        apply_filters(page, **{"f-type": "", "f-channel": "kiosk"})
        assert sorted(page.evaluate(SKUS_JS)) == ["REC-M", "nude-rose"]
        assert cells(page, "REC-M")["try_ons"] == "1"
        assert set(bars(page, "#chart-nps")) == {"kiosk", "all"}
        assert page.inner_text("#kpi-nps-label") == "NPS (all channels)"
        assert page.inner_text("#kpi-nps") == "20"

        # Date filter: a range after the seeds holds nothing.
        apply_filters(page, **{"f-channel": "", "f-start": str(today + timedelta(days=1)),
                               "f-end": str(today + timedelta(days=2))})
        assert page.inner_text("#kpi-tryons") == "0"
        assert page.locator("#table-products tbody tr").count() == 0

    def test_export_buttons_download_reports(self, new_page: Any, seeded: None,
                                             api_keys: dict[str, str]) -> None:
        page = new_page()
        page.goto("/dashboard")
        page.evaluate("(k) => sessionStorage.setItem('tryon.analyst_key', k)", api_keys["analyst"])
        page.reload()
        page.wait_for_function("() => document.body.dataset.loaded", timeout=WAIT_MS)
        apply_filters(page, **{"f-store": STORE})
        with page.expect_download() as dl:
            page.click("[data-export='products.csv']")
        rows = list(csv.DictReader(io.StringIO(Path(dl.value.path()).read_text())))
        by_sku = {r["sku"]: r for r in rows}
        assert by_sku["RND-47"]["try_ons"] == "3" and by_sku["REC-M"]["try_ons"] == "1"
        with page.expect_download() as dl:
            page.click("[data-export='nps.jsonl']")
        assert dl.value.suggested_filename == "nps.jsonl"
        assert '"channel":"kiosk"' in Path(dl.value.path()).read_text()
        with page.expect_download() as dl:
            page.click("[data-export='fit-gap.parquet']")
        assert Path(dl.value.path()).read_bytes()[:4] == b"PAR1"
