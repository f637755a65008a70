"""benchmarks/analytics_bounds.py: its core aggregations do the reports' work (no timing asserted).

The lower bounds mean something only if each core computes what its report needs: on a small
SYNTHETIC lake without identity links, the distinct pairs are the report's unique shoppers
summed over its groups, the dwell groups are its groups with dwell, and the first try-ons are
the funnel's cohorts.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from benchmarks import analytics_bounds as bounds
from benchmarks.analytics_lake import open_lake
from benchmarks.analytics_load import DAYS, END
from service.analytics.definitions import Filters
from service.analytics.engines import AnalyticsRuntime

EVENTS = 30_000  # SYNTHETIC


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AnalyticsRuntime, Any]]:
    root: Path = tmp_path_factory.mktemp("bounds")
    rt, sessions, written = open_lake(root, EVENTS, links=False)
    assert written is not None and rt.lake.read_state().rows() == EVENTS
    try:
        yield rt, sessions
    finally:
        rt.close()


def _core(rt: AnalyticsRuntime, s: Any, sql: str) -> int:
    return int(rt.duck.query(s, rt.lake.read_state(), sql, [])[0][0])


@pytest.mark.parametrize("dims", [("variant",), ("variant", "channel", "store")])
def test_product_cores_match_the_report(
    lake: tuple[AnalyticsRuntime, Any], dims: tuple[str, ...]
) -> None:
    rt, sessions = lake
    keys = bounds.SV if dims == ("variant",) else bounds.SVCS
    f90 = Filters(END - timedelta(days=DAYS), END)
    with sessions() as s:
        rows = rt.source(s).product_summary(f90, dims)
        pairs = _core(rt, s, bounds.distinct_pairs(keys))
        dwell_groups = _core(rt, s, bounds.dwell_quantiles(keys))
    assert pairs == sum(r["unique_shoppers"] for r in rows) > 0
    assert dwell_groups == sum(1 for r in rows if r["dwell_events"]) > 0


def test_funnel_cores_match_the_report(lake: tuple[AnalyticsRuntime, Any]) -> None:
    rt, sessions = lake
    f90 = Filters(END - timedelta(days=DAYS), END)
    with sessions() as s:
        rows = rt.source(s).funnel(f90, 72.0, ("channel",))
        cohorts = _core(rt, s, bounds.first_try_on("e.sku, e.channel"))
        conversions = _core(rt, s, bounds.conversions_read())
    assert cohorts == sum(r["tried"] for r in rows) > 0
    assert conversions > 0


def test_the_naive_query_groups_like_the_report(lake: tuple[AnalyticsRuntime, Any]) -> None:
    rt, sessions = lake
    f90 = Filters(END - timedelta(days=DAYS), END)
    with sessions() as s:
        rows = rt.source(s).product_summary(f90, ("variant",))
        assert _core(rt, s, bounds.naive_products(bounds.SV)) == len(rows)
