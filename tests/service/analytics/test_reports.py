"""Analytics numbers against hand-computed fixtures, on SQLite and PostgreSQL, via real ingest."""

from __future__ import annotations

import numpy as np
import pytest

from service.analytics import queries, shaping
from service.analytics.definitions import Filters
from service.analytics.fitgap import Frame, consented_face_widths, fit_gap
from tests.service.analytics.support import T0, H, fixture_events, migrated, store


@pytest.fixture(scope="module")
def db(db_url):
    with migrated(db_url) as factory:
        store(factory, fixture_events())
        yield factory


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
            rows = by(queries.funnel(s, Filters(product_type="glasses"), 72.0), "sku")
            lipstick = by(queries.funnel(s, Filters(product_type="lipstick"), 72.0), "sku")
        # Lipstick try-ons (Shade Applied: sku = shade id) are their own cohorts.
        assert {k: r["tried"] for k, r in lipstick.items()} == {("ruby",): 3, ("nude",): 1}
        assert {k: (r["tried"], r["carted"], r["ordered"]) for k, r in rows.items()} == {
            ("RB-1",): (3, 1, 2),
            ("RB-2",): (3, 0, 1),
        }
        assert rows[("RB-1",)]["order_rate"] == pytest.approx(2 / 3)
        # Revenue by hand: RB-1 = s1's 120 + s3's 99.50; RB-2 = s6's line 2 x 80 (the RB-9
        # line was never tried); lipstick had no orders.
        assert {k: (r["revenue"], r["currency"]) for k, r in rows.items()} == {
            ("RB-1",): (219.5, "EUR"),
            ("RB-2",): (160.0, "EUR"),
        }
        assert shaping.funnel_totals(list(rows.values())) == {"revenue": 379.5, "currency": "EUR"}
        assert shaping.funnel_totals(list(lipstick.values())) == {"revenue": 0.0, "currency": None}

    def test_longer_window_catches_late_cart(self, db) -> None:
        with db() as s:
            assert by(queries.funnel(s, Filters(), 120.0), "sku")[("RB-1",)]["carted"] == 2
            # A 2 h window: s3's order came 1 h after its try-on, s1's 3 h after its first.
            short = by(queries.funnel(s, Filters(), 2.0), "sku")[("RB-1",)]
            assert short["ordered"] == 1
            assert short["revenue"] == 99.5  # s1's order (3 h after its try-on) is out

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
                consented_face_widths(s, Filters()),
                self.FRAMES,
                tolerance_mm=5.0,
                bin_mm=2.0,
                min_shoppers=1,
            )
        assert report["shoppers"] == 4 and report["shoppers_without_fit"] == 1
        assert report["share_without_fit"] == pytest.approx(0.25)
        gap_bins = [(b["lo_mm"], b["shoppers"]) for b in report["bins"] if b["gap"]]
        assert gap_bins == [(160.0, 1)]
        assert report["gaps"] == [
            {
                "from_mm": 160.0,
                "to_mm": 162.0,
                "shoppers": 1,
                "face_width_median_mm": 160.0,
                "recommended": True,
                "suggested_frame_width_mm": 144.0,
                "suggested_frame_width_ci95_mm": [144.0, 144.0],
                "reason": None,
            }
        ]
        b140 = next(b for b in report["bins"] if b["lo_mm"] == 140.0)
        assert (b140["shoppers"], b140["fitting_skus"]) == (2, ["B"])

    def test_no_recommendation_below_min_shoppers_and_a_ci_above(self) -> None:
        """One shopper (the issue's 156.7 mm advice) is reported with its sample size and no
        suggestion; 40 shoppers in a gap give a suggestion with a 95% interval around it."""
        one = fit_gap(np.array([174.1]), [Frame("A", 126.0)])
        (gap,) = one["gaps"]
        assert gap["shoppers"] == 1 and gap["recommended"] is False
        assert gap["suggested_frame_width_mm"] is None and one["recommendations"] == 0
        widths = np.linspace(160.0, 170.0, 40)
        report = fit_gap(widths, [Frame("A", 126.0)], min_shoppers=20)
        (gap,) = report["gaps"]
        lo, hi = gap["suggested_frame_width_ci95_mm"]
        assert gap["shoppers"] == 40 and gap["recommended"] is True
        assert lo < gap["suggested_frame_width_mm"] < hi and hi - lo < 5.0
        slo, shi = report["share_without_fit_ci95"]
        assert slo < report["share_without_fit"] == 1.0 and shi == 1.0

    def test_the_one_fit_rule(self) -> None:
        """fit_gap's 'fits' is vision.measure.frame_fits (0.9 x face width -+ 4 mm)."""
        from vision.measure import frame_fits

        for face, frame in ((140.0, 130.0), (140.0, 130.1), (140.0, 121.9), (150.0, 139.0)):
            report = fit_gap(np.array([face]), [Frame("A", frame)], min_shoppers=1)
            assert (report["shoppers_without_fit"] == 0) == frame_fits(frame, face)

    def test_wider_tolerance_closes_gap(self) -> None:
        # ideal frames 117 and 144 mm: a 150 mm frame fits the second only at 10 mm tolerance
        assert fit_gap(np.array([130.0, 160.0]), [Frame("A", 150.0)])["shoppers_without_fit"] == 2
        report = fit_gap(
            np.array([130.0, 160.0]), [Frame("A", 150.0)], tolerance_mm=10.0, min_shoppers=1
        )
        assert (
            report["shoppers_without_fit"] == 1
            and report["gaps"][0]["suggested_frame_width_mm"] == 117.0
        )
