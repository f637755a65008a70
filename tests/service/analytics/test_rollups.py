"""Daily rollups equal raw-event reports; linked identities in funnel and unique counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select

from service.analytics import queries, rollups
from service.analytics.definitions import Filters
from service.analytics.models import DailyProduct, DailyShade
from service.handoff.service import claim, mint
from service.shoppers.erasure import erase_shopper
from service.shoppers.retention import purge_older_than
from service.touchpoints.service import ingest
from service.wiring import erasers, ingest_hooks, purgers
from tests.service.analytics.support import T, ev, fixture_events, identity_events, migrated, store

H = timedelta(hours=1)
DAY0 = datetime(2026, 5, 1, tzinfo=UTC)
FA, SA, DW = "Frame Applied", "Shade Applied", "Try-On Dwell"


# Odd skin-tone properties: Python's band (ingest) and SQL's (raw edge days) must agree.
BAND_PROPS = [
    {},
    {"skin_tone_band": "MST 4-7"},
    {"skin_tone_band": 5},
    {"skin_tone_band": "x" * 65, "monk_index": 9, "consent": True},
    {"monk_index": 2, "consent": True},
    {"monk_index": 3.5, "consent": True},
    {"monk_index": 10.7, "consent": True},
    {"monk_index": 0.5, "consent": True},
    {"monk_index": "4", "consent": True},
    {"monk_index": True, "consent": True},
]


def synthetic_events(n: int = 1500, seed: int = 5) -> list[dict]:
    """SYNTHETIC: random try-ons, dwells, shades and carts over 8 days, 3 channels, 3 stores."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        at = DAY0 + timedelta(seconds=int(rng.integers(8 * 86400)))
        kind = (
            "Frame Applied",
            "Shade Applied",
            "Try-On Dwell",
            "Product Added",
            "Try-On Started",
        )[int(rng.integers(5))]
        props: dict = {}
        if kind != "Shade Applied" or rng.random() < 0.3:
            props["sku"] = f"SKU-{int(rng.integers(6))}"
        if rng.random() < 0.6 and "sku" in props:
            props["variant"] = ("black", "gold")[int(rng.integers(2))]
        if kind == "Shade Applied":
            props["shade"] = f"shade-{int(rng.integers(4))}"
            props.update(BAND_PROPS[int(rng.integers(len(BAND_PROPS)))])
        if kind == "Try-On Dwell":
            props["dwell_ms"] = int(rng.integers(100, 90_000))
        if rng.random() < 0.7:
            props["store_id"] = f"S{int(rng.integers(3))}"
        channel = ("web", "kiosk", "app")[int(rng.integers(3))]
        out.append(ev(kind, f"r{int(rng.integers(200))}", at, channel, **props))
    return out


@pytest.fixture(scope="module")
def db(db_url):
    with migrated(db_url) as factory:
        synthetic = synthetic_events()
        for i in range(0, len(synthetic), 250):
            store(factory, synthetic[i : i + 250])
        # A replayed batch and a batch half of repeats: duplicates must not count twice.
        with factory.begin() as s:
            replay = ingest(s, synthetic[:250], source="test", hooks=ingest_hooks())
            mixed = ingest(
                s,
                [*synthetic[250:290], *synthetic_events(40, seed=9)],
                source="test",
                hooks=ingest_hooks(),
            )
        assert (replay.inserted, replay.duplicates) == (0, 250)
        assert (mixed.inserted, mixed.duplicates) == (40, 40)
        store(factory, fixture_events())
        store(factory, identity_events()[:2])
        with factory.begin() as s:
            token = mint(s, "k1", ttl_s=600).token
            claim(s, token, "p1")
        store(factory, identity_events()[2:])
        yield factory


def by(rows, *keys):
    return {tuple(r[k] for k in keys): r for r in rows}


FILTERS = [
    Filters(),
    Filters(start=DAY0, end=DAY0 + timedelta(days=8)),  # whole days only
    Filters(start=DAY0 + timedelta(hours=7, minutes=13), end=DAY0 + timedelta(days=5, hours=3)),
    Filters(start=DAY0 + timedelta(days=2, hours=1), end=DAY0 + timedelta(days=2, hours=20)),
    Filters(start=DAY0 + timedelta(days=3, hours=12)),
    Filters(end=DAY0 + timedelta(days=4, hours=6)),
    Filters(start=DAY0 + timedelta(hours=5), end=DAY0 + timedelta(days=7), channel="kiosk"),
    Filters(start=DAY0 + timedelta(days=1), end=DAY0 + timedelta(days=6, hours=1), store_id="S2"),
]
GROUPS = [(), ("variant",), ("day",), ("variant", "channel", "store", "day")]


class TestRollupsMatchRaw:
    @pytest.mark.parametrize("f", FILTERS, ids=range(len(FILTERS)))
    def test_products(self, db, f) -> None:
        with db() as s:
            for group in GROUPS:
                names = ["sku", *("store_id" if g == "store" else g for g in group)]
                raw = by(queries.product_summary(s, f, group), *names)
                fast = by(queries.product_summary(s, f, group, metrics="counts"), *names)
                assert raw, (f, group)
                assert set(fast) == set(raw), (f, group)
                for k, r in raw.items():
                    got = (fast[k]["try_ons"], fast[k]["dwell_events"])
                    assert got == (r["try_ons"], r["dwell_events"]), (f, group, k)

    @pytest.mark.parametrize("f", FILTERS, ids=range(len(FILTERS)))
    def test_shades(self, db, f) -> None:
        with db() as s:
            for banded in (False, True):
                keys = ("shade", "skin_tone_band") if banded else ("shade",)
                raw = by(queries.shade_popularity(s, f, banded), *keys)
                fast = by(queries.shade_popularity(s, f, banded, metrics="counts"), *keys)
                assert raw and set(fast) == set(raw), (f, banded)
                for k, r in raw.items():
                    assert fast[k]["applications"] == r["applications"], (f, banded, k)
                    assert fast[k]["share"] == pytest.approx(r["share"]), (f, banded, k)

    def test_dwell_mean_and_fixture_numbers(self, db) -> None:
        """The hand-computed fixture's RB-1/black: 3 try-ons, 4 dwells of 10-40 s (mean 25 s)."""
        day = Filters(start=datetime(2026, 3, 2, tzinfo=UTC), end=datetime(2026, 3, 4, tzinfo=UTC))
        with db() as s:
            rows = by(queries.product_summary(s, day, ("variant",), "counts"), "sku", "variant")
        black = rows[("RB-1", "black")]
        assert (black["try_ons"], black["dwell_events"]) == (3, 4)
        assert black["dwell_mean_ms"] == pytest.approx(25_000)

    def test_bands_cover_the_odd_properties(self, db) -> None:
        with db() as s:
            bands = {k[1] for k in rollups.shade_counts(s, Filters(), ["shade", "skin_tone_band"])}
        assert {"MST 1-3", "MST 4-7", "MST 8-10", "unknown"} <= bands
        assert "5" not in bands and not any(len(b) > 64 for b in bands)

    def test_rebuild_equals_incremental(self, db) -> None:
        with db() as s:
            before = {
                m: sorted(s.execute(select(m.__table__)).all()) for m in (DailyProduct, DailyShade)
            }
            counts = rollups.rebuild(s)
            after = {
                m: sorted(s.execute(select(m.__table__)).all()) for m in (DailyProduct, DailyShade)
            }
            s.rollback()
        assert counts["analytics_daily_product"] == len(before[DailyProduct]) > 0
        assert after == before

    def test_split_range(self) -> None:
        f = Filters(start=DAY0 + timedelta(hours=3), end=DAY0 + timedelta(days=2, hours=1))
        d0, d1, edges = rollups.split_range(f)
        assert (d0, d1) == (DAY0.date() + timedelta(days=1), DAY0.date() + timedelta(days=2))
        assert edges == [(f.start, DAY0 + timedelta(days=1)), (DAY0 + timedelta(days=2), f.end)]
        inside = Filters(start=DAY0 + timedelta(hours=1), end=DAY0 + timedelta(hours=2))
        assert rollups.split_range(inside)[2] == [(inside.start, inside.end)]


class TestRetentionAndErasure:
    def test_retention_keeps_rollups(self, db) -> None:
        """Retention deletes raw events; the counts (rollups, no shopper id) stay."""
        with db() as s:
            before = queries.product_summary(s, Filters(), (), "counts")
            purge_older_than(s, 30, purgers())  # every test event is months old
            assert queries.product_summary(s, Filters(), ()) == []
            assert queries.product_summary(s, Filters(), (), "counts") == before
            s.rollback()

    def test_erasure_leaves_rollups(self, db) -> None:
        with db() as s:
            before = [
                sorted(s.execute(select(m.__table__)).all()) for m in (DailyProduct, DailyShade)
            ]
            assert erase_shopper(s, "k1", erasers())["events"] > 0
            after = [
                sorted(s.execute(select(m.__table__)).all()) for m in (DailyProduct, DailyShade)
            ]
            s.rollback()
        assert after == before


class TestLinkedIdentities:
    RANGE = Filters(start=T - H, end=T + 24 * H)

    def test_funnel_counts_the_linked_group_once(self, db) -> None:
        """Shoppers {k1, p1, u1} (hand-off + identify) and k2 tried RB-7: tried 2. The group
        carted (u1, T+3h) and ordered (p1, T+2h) within 72 h of its first try-on (k1, T);
        p2's order is nobody's conversion -> (2, 1, 1). Unlinked it would be (3, 0, 1)."""
        with db() as s:
            rows = by(queries.funnel(s, self.RANGE, 72.0), "sku")
            by_channel = by(queries.funnel(s, self.RANGE, 72.0, ("channel",)), "sku", "channel")
        rb7 = rows[("RB-7",)]
        assert (rb7["tried"], rb7["carted"], rb7["ordered"]) == (2, 1, 1)
        # kiosk cohorts: the group (t0 = T) and k2; app cohort: the group (t0 = T+1h).
        kiosk, app = by_channel[("RB-7", "kiosk")], by_channel[("RB-7", "app")]
        assert (kiosk["tried"], kiosk["carted"], kiosk["ordered"]) == (2, 1, 1)
        assert (app["tried"], app["carted"], app["ordered"]) == (1, 1, 1)

    def test_window_starts_at_the_groups_first_try_on(self, db) -> None:
        """1.5 h window: the group's order came 2 h after k1's try-on -> not a conversion."""
        with db() as s:
            rb7 = by(queries.funnel(s, self.RANGE, 1.5), "sku")[("RB-7",)]
        assert (rb7["tried"], rb7["ordered"]) == (2, 0)

    def test_unique_shoppers_merge_linked_ids(self, db) -> None:
        """RB-7: 3 try-ons (k1, k2, p1) by 2 shoppers; coral: 3 applications by 2."""
        with db() as s:
            rb7 = by(queries.product_summary(s, self.RANGE, ()), "sku")[("RB-7",)]
            coral = by(queries.shade_popularity(s, self.RANGE), "shade")[("coral",)]
        assert (rb7["try_ons"], rb7["unique_shoppers"]) == (3, 2)
        assert (coral["applications"], coral["unique_shoppers"]) == (3, 2)


class TestSchemaAndRebuilds:
    def test_models_match_the_migration(self, db) -> None:
        from alembic.autogenerate import compare_metadata
        from alembic.migration import MigrationContext

        from service.db.base import Base

        ours = {"analytics_daily_product", "analytics_daily_shade", "analytics_shopper_groups"}
        with db() as s:
            conn = s.connection()
            assert ours <= set(sa_inspect(conn).get_table_names())
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diffs = compare_metadata(ctx, Base.metadata)
        flat = [d for g in diffs for d in (g if isinstance(g, list) else [g])]
        assert not [d for d in flat if any(t in repr(d) for t in ours)]
