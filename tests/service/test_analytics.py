"""Analytics numbers against hand-computed fixtures, on SQLite and PostgreSQL, via real ingest."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.analytics import queries
from service.analytics.definitions import Filters
from service.analytics.fitgap import Frame, consented_face_widths, fit_gap
from tests.service.analytics_support import BACKENDS, database, ev, store

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
H = timedelta(hours=1)


def fixture_events() -> list[dict]:
    """The hand-computed fixture (numbers in each test's docstring)."""
    fa, dw = "Frame Applied", "Try-On Dwell"
    e = [
        # Try-ons: RB-1/black by s1 twice (kiosk, store S1) and s3 (kiosk S1); RB-1/tortoise by s2
        # (web); RB-2 by s4 and s5 (web).
        ev(fa, "s1", T0, "kiosk", sku="RB-1", variant="black", store_id="S1"),
        ev(fa, "s1", T0 + H, "kiosk", sku="RB-1", variant="black", store_id="S1"),
        ev(fa, "s2", T0 + 2 * H, "web", sku="RB-1", variant="tortoise"),
        ev(fa, "s3", T0 + 24 * H, "kiosk", sku="RB-1", variant="black", store_id="S1"),
        ev(fa, "s4", T0, "web", sku="RB-2"),
        ev(fa, "s5", T0, "web", sku="RB-2"),
        # Dwell: RB-1/black 10,20,30,40 s; RB-1/tortoise 5 s; RB-2 1 s and 3 s.
        *[
            ev(
                dw,
                "s1",
                T0 + i * H,
                "kiosk",
                sku="RB-1",
                variant="black",
                dwell_ms=ms,
                store_id="S1",
            )
            for i, ms in enumerate((40_000, 10_000, 30_000, 20_000))
        ],
        ev(dw, "s2", T0 + 2 * H, "web", sku="RB-1", variant="tortoise", dwell_ms=5_000),
        ev(dw, "s4", T0, "web", sku="RB-2", dwell_ms=1_000),
        ev(dw, "s5", T0, "web", sku="RB-2", dwell_ms=3_000),
        # Funnel (72 h window): s1 carts and orders in time; s2 carts after 100 h (too late);
        # s3 orders without a cart event; s4 carted an hour BEFORE trying (not a conversion).
        ev("Product Added", "s1", T0 + 2 * H, "kiosk", sku="RB-1"),
        ev("Order Completed", "s1", T0 + 3 * H, "web", sku="RB-1", order_id="o1"),
        ev("Product Added", "s2", T0 + 100 * H, "web", sku="RB-1"),
        ev("Order Completed", "s3", T0 + 25 * H, "kiosk", sku="RB-1", order_id="o3"),
        ev("Product Added", "s4", T0 - H, "web", sku="RB-2"),
        # s6 tries RB-2 and buys it in a two-line order (no sku column: lines are unnested).
        ev(fa, "s6", T0, "web", sku="RB-2"),
        ev(
            "Order Completed",
            "s6",
            T0 + H,
            "web",
            order_id="o6",
            products=[{"sku": "RB-2"}, {"sku": "RB-9"}],
        ),
        # NPS: kiosk 10, 9, 7, 3; web 0, 6.
        *[
            ev("Feedback Submitted", f"n{i}", T0, "kiosk", nps=s)
            for i, s in enumerate((10, 9, 7, 3))
        ],
        *[ev("Feedback Submitted", f"w{i}", T0, "web", nps=s) for i, s in enumerate((0, 6))],
        # Shades: ruby x3 (MST 2 with consent, band "MST 4-7", unknown), nude x1 (MST 2).
        ev("Shade Applied", "s1", T0, "web", shade="ruby", monk_index=2, consent=True),
        ev("Shade Applied", "s2", T0, "web", shade="ruby", skin_tone_band="MST 4-7"),
        ev("Shade Applied", "s3", T0, "web", shade="ruby"),
        ev("Shade Applied", "s1", T0, "web", shade="nude", monk_index=2, consent=True),
        # Face widths: s1 129 & 131 (mean 130), s2 140, s3 141, s4 160 consented;
        # s5 150 WITHOUT consent (the ingest path drops it).
        ev("Try-On Started", "s1", T0, "kiosk", face_width_mm=129.0, consent=True),
        ev("Try-On Started", "s1", T0 + H, "kiosk", face_width_mm=131.0, consent=True),
        ev("Try-On Started", "s2", T0, "web", face_width_mm=140.0, consent=True),
        ev("Try-On Started", "s3", T0, "web", face_width_mm=141.0, consent=True),
        ev("Try-On Started", "s4", T0, "web", face_width_mm=160.0, consent=True),
        ev("Try-On Started", "s5", T0, "web", face_width_mm=150.0, consent=False),
    ]
    return e


@pytest.fixture(scope="module", params=BACKENDS)
def db(request, tmp_path_factory):
    gen = database(request.param, tmp_path_factory.mktemp("an"), request)
    factory = next(gen)
    store(factory, fixture_events())
    yield factory
    gen.close()


def by(rows, *keys):
    return {tuple(r[k] for k in keys): r for r in rows}


class TestProductSummary:
    def test_try_ons_unique_shoppers_and_dwell(self, db) -> None:
        """RB-1/black: 3 try-ons by 2 shoppers, dwell 10-40 s -> median 25 s, p90 37 s
        (linear interpolation: position 0.9*3 = 2.7 -> 30 + 0.7*10)."""
        with db() as s:
            rows = by(queries.product_summary(s, Filters()), "sku", "variant")
        black = rows[("RB-1", "black")]
        assert (black["try_ons"], black["unique_shoppers"]) == (3, 2)
        assert black["dwell_events"] == 4
        assert black["dwell_median_ms"] == pytest.approx(25_000)
        assert black["dwell_p90_ms"] == pytest.approx(37_000)
        tort = rows[("RB-1", "tortoise")]
        assert (tort["try_ons"], tort["dwell_median_ms"], tort["dwell_p90_ms"]) == (1, 5_000, 5_000)
        rb2 = rows[("RB-2", None)]
        assert rb2["dwell_median_ms"] == pytest.approx(2_000)
        assert rb2["dwell_p90_ms"] == pytest.approx(2_800)

    def test_matches_numpy_percentiles(self, db) -> None:
        with db() as s:
            rows = by(queries.product_summary(s, Filters(), ()), "sku")
        ref = np.array([10_000, 20_000, 30_000, 40_000, 5_000])
        assert rows[("RB-1",)]["dwell_median_ms"] == pytest.approx(np.percentile(ref, 50))
        assert rows[("RB-1",)]["dwell_p90_ms"] == pytest.approx(np.percentile(ref, 90))

    def test_filters_channel_store_range_and_day(self, db) -> None:
        with db() as s:
            kiosk = by(queries.product_summary(s, Filters(channel="kiosk"), ()), "sku")
            assert set(kiosk) == {("RB-1",)} and kiosk[("RB-1",)]["try_ons"] == 3
            s1 = by(
                queries.product_summary(s, Filters(store_id="S1"), ("store",)), "sku", "store_id"
            )
            assert s1[("RB-1", "S1")]["try_ons"] == 3
            first_day = Filters(start=T0 - H, end=T0 + 12 * H)
            assert by(queries.product_summary(s, first_day, ()), "sku")[("RB-1",)]["try_ons"] == 3
            days = by(queries.product_summary(s, Filters(), ("day",)), "sku", "day")
        assert days[("RB-1", "2026-03-02")]["try_ons"] == 3
        assert days[("RB-1", "2026-03-03")]["try_ons"] == 1

    def test_unknown_dimension_is_rejected(self, db) -> None:
        with db() as s, pytest.raises(ValueError, match="unknown group_by"):
            queries.product_summary(s, Filters(), ("colour",))


class TestFunnel:
    def test_conversion_window(self, db) -> None:
        """RB-1: tried by s1, s2, s3; carted in window by s1 only (s2 too late); ordered by s1
        and s3. RB-2: tried by s4, s5, s6; s4's cart came before the try-on; s6 ordered it as
        one line of a two-line order -> 3 tried, 0 carted, 1 ordered."""
        with db() as s:
            rows = by(queries.funnel(s, Filters(), 72.0), "sku")
        assert {k: (r["tried"], r["carted"], r["ordered"]) for k, r in rows.items()} == {
            ("RB-1",): (3, 1, 2),
            ("RB-2",): (3, 0, 1),
        }
        assert rows[("RB-1",)]["order_rate"] == pytest.approx(2 / 3)

    def test_longer_window_catches_late_cart(self, db) -> None:
        with db() as s:
            assert by(queries.funnel(s, Filters(), 120.0), "sku")[("RB-1",)]["carted"] == 2
            # A 2 h window: s3's order came 1 h after its try-on, s1's 3 h after its first.
            assert by(queries.funnel(s, Filters(), 2.0), "sku")[("RB-1",)]["ordered"] == 1

    def test_by_channel(self, db) -> None:
        with db() as s:
            rows = by(queries.funnel(s, Filters(), 72.0, ("channel",)), "sku", "channel")
        assert (rows[("RB-1", "kiosk")]["tried"], rows[("RB-1", "kiosk")]["ordered"]) == (2, 2)
        assert (rows[("RB-1", "web")]["tried"], rows[("RB-1", "web")]["carted"]) == (1, 0)


class TestNpsAndShades:
    def test_nps_by_channel(self, db) -> None:
        """kiosk: 2 promoters, 1 passive, 1 detractor of 4 -> +25; web: 2 detractors -> -100;
        all: (2 - 3) / 6 -> -16.7."""
        with db() as s:
            rows = by(queries.nps(s, Filters()), "channel")
        assert (
            rows[("kiosk",)]["promoters"],
            rows[("kiosk",)]["passives"],
            rows[("kiosk",)]["detractors"],
        ) == (2, 1, 1)
        assert rows[("kiosk",)]["nps"] == pytest.approx(25.0)
        assert rows[("web",)]["nps"] == pytest.approx(-100.0)
        assert rows[("all",)]["nps"] == pytest.approx(-100 / 6)

    def test_shade_popularity_per_skin_tone(self, db) -> None:
        with db() as s:
            overall = by(queries.shade_popularity(s, Filters()), "shade")
            banded = by(
                queries.shade_popularity(s, Filters(), by_skin_tone=True), "shade", "skin_tone_band"
            )
        assert overall[("ruby",)]["applications"] == 3 and overall[("ruby",)][
            "share"
        ] == pytest.approx(0.75)
        assert {k: r["applications"] for k, r in banded.items()} == {
            ("ruby", "MST 1-3"): 1,
            ("ruby", "MST 4-7"): 1,
            ("ruby", "unknown"): 1,
            ("nude", "MST 1-3"): 1,
        }


class TestFitGap:
    FRAMES = (Frame("A", 118.0), Frame("B", 126.0))

    def test_consented_widths_only_one_per_shopper(self, db) -> None:
        with db() as s:
            widths = sorted(consented_face_widths(s, Filters()))
        assert widths == pytest.approx([130.0, 140.0, 141.0, 160.0])  # s5 (no consent) absent

    def test_gap_and_suggestion(self, db) -> None:
        """Ideal frame = 0.9 x face width, tolerance 5 mm: face 130 (ideal 117) fits A (1 mm),
        140/141 (126/126.9) fit B, 160 (144) fits nothing -> one gap at face widths 160-162 mm
        with one shopper; suggested next frame width 0.9 x 160 = 144 mm."""
        with db() as s:
            report = fit_gap(
                consented_face_widths(s, Filters()), self.FRAMES, tolerance_mm=5.0, bin_mm=2.0
            )
        assert report["shoppers"] == 4 and report["shoppers_without_fit"] == 1
        assert report["share_without_fit"] == pytest.approx(0.25)
        gap_bins = [(b["lo_mm"], b["shoppers"]) for b in report["bins"] if b["gap"]]
        assert gap_bins == [(160.0, 1)]
        assert report["gaps"] == [
            {"from_mm": 160.0, "to_mm": 162.0, "shoppers": 1, "suggested_frame_width_mm": 144.0}
        ]
        b140 = next(b for b in report["bins"] if b["lo_mm"] == 140.0)
        assert (b140["shoppers"], b140["fitting_skus"]) == (2, ["B"])

    def test_wider_tolerance_closes_gap(self) -> None:
        # ideal frames 117 and 144 mm: a 150 mm frame fits the second only at 10 mm tolerance
        assert fit_gap(np.array([130.0, 160.0]), [Frame("A", 150.0)])["shoppers_without_fit"] == 2
        report = fit_gap(np.array([130.0, 160.0]), [Frame("A", 150.0)], tolerance_mm=10.0)
        assert (
            report["shoppers_without_fit"] == 1
            and report["gaps"][0]["suggested_frame_width_mm"] == 117.0
        )


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from service.access.keys import create_key
    from service.app import create_app
    from service.settings import Settings

    tmp = tmp_path_factory.mktemp("api")
    app = create_app(
        Settings(
            database_url=f"sqlite:///{tmp / 'api.sqlite'}",
            bootstrap_admin_key=None,
            retention_on_startup=False,
        )
    )
    with TestClient(app) as c:
        with app.state.runtime.sessions.begin() as session:
            _, c.analyst = create_key(session, "analyst", ["analyst"])
            _, c.kiosk = create_key(session, "kiosk", ["kiosk"])
        store(app.state.runtime.sessions, fixture_events())
        yield c


class TestEndpoints:
    def test_analyst_scope_required(self, client) -> None:
        assert client.get("/v1/analytics/nps").status_code == 401
        r = client.get("/v1/analytics/nps", headers={"X-API-Key": client.kiosk})
        assert r.status_code == 403

    def test_json_and_exports(self, client) -> None:
        h = {"X-API-Key": client.analyst}
        body = client.get("/v1/analytics/funnel", headers=h, params={"window_hours": 72}).json()
        assert {r["sku"]: r["ordered"] for r in body["rows"]} == {"RB-1": 2, "RB-2": 1}
        csv = client.get("/v1/analytics/products", headers=h, params={"format": "csv"})
        assert csv.headers["content-type"].startswith("text/csv")
        assert csv.text.splitlines()[0].startswith("sku,variant,try_ons")
        lines = client.get(
            "/v1/analytics/nps", headers=h, params={"format": "jsonl"}
        ).text.splitlines()
        assert json.loads(lines[0])["channel"] == "kiosk"
        import pyarrow.parquet as pq

        pq_body = client.get(
            "/v1/analytics/products",
            headers=h,
            params={"format": "parquet", "channel": "kiosk", "group_by": ""},
        ).content
        table = pq.read_table(io.BytesIO(pq_body)).to_pylist()
        assert table[0]["sku"] == "RB-1" and table[0]["try_ons"] == 3

    def test_fit_gap_against_the_bundled_catalog(self, client) -> None:
        body = client.get("/v1/analytics/fit-gap", headers={"X-API-Key": client.analyst}).json()
        frames = [f["frame_width_mm"] for f in body["frames"]]
        assert frames and body["shoppers"] == 4
        tol = body["tolerance_mm"]
        expected = sum(
            not any(abs(f - 0.9 * w) <= tol for f in frames) for w in (130, 140, 141, 160)
        )
        assert body["shoppers_without_fit"] == expected
        csv = client.get(
            "/v1/analytics/fit-gap", headers={"X-API-Key": client.analyst}, params={"format": "csv"}
        )
        assert csv.text.startswith("lo_mm,hi_mm,shoppers")

    def test_bad_group_by_and_range(self, client) -> None:
        h = {"X-API-Key": client.analyst}
        assert (
            client.get("/v1/analytics/products", headers=h, params={"group_by": "x"}).status_code
            == 422
        )
        r = client.get(
            "/v1/analytics/nps",
            headers=h,
            params={"start": "2026-03-02T00:00:00Z", "end": "2026-03-01T00:00:00Z"},
        )
        assert r.status_code == 422

    @pytest.mark.parametrize(
        "params",
        [
            {"start": "0001-01-01T00:00:00+23:59"},  # before year 1 in UTC
            {"end": "9999-12-31T23:59:59-23:59"},  # after year 9999 in UTC
            {"start": "9999-12-31T00:00:00", "end": "9999-12-31T12:00:00"},  # + window
        ],
    )
    @pytest.mark.parametrize(
        "path", ["products", "funnel", "shades", "nps", "fit-gap"]
    )
    def test_times_out_of_range_are_422(self, client, path, params) -> None:
        # Converting these to UTC (or adding the conversion window) overflowed: 500.
        r = client.get(f"/v1/analytics/{path}", headers={"X-API-Key": client.analyst},
                       params=params)
        assert r.status_code == 422, r.text
        assert "between 0001-01-01 and 9999-01-01" in r.json()["error"]["message"]

    def test_no_server_side_charts(self, client) -> None:
        # One chart stack: the dashboard draws the reports' JSON itself.
        r = client.get("/v1/analytics/charts/funnel.png", headers={"X-API-Key": client.analyst})
        assert r.status_code == 404
