"""What the slowest lake reports cannot avoid: their exact aggregations alone, beside the reports.

On one lake of SYNTHETIC events (written by benchmarks.synthetic_lake, as for the 100M run),
in one run and through the service's own DuckDB engine (same threads, memory limit, views):
- each slow report as served (service.analytics.duck),
- the aggregation at its core that no exact formulation escapes, timed alone in the fastest
  form found (one hashed group key beside the shopper key; no identity-link join, no group
  values, no output shaping): distinct (group, shopper) pairs among try-ons, the dwell
  percentiles per group, the funnel's first try-on per (shopper, product[, channel]) and
  the read of its conversion events (without joining them to anything),
- the sum of those cores: a lower bound on the report's time with today's definitions
  (exact unique shoppers, exact quantile_cont percentiles),
- the naive one-query formulation (count(DISTINCT) and a FILTERed quantile in one GROUP BY),
  the shape of the issue's DuckDB comparison.
Run: `python -m benchmarks.analytics_bounds [--events N] [--runs R] [--lake DIR]`
(--lake keeps the written lake in DIR and reuses it on the next run).
"""

from __future__ import annotations

import argparse
import math
import tempfile
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks.analytics_lake import TARGET_P95_MS, open_lake, timed
from benchmarks.analytics_load import DAYS, END
from benchmarks.common import machine_info, markdown_table, write_report
from service.analytics.definitions import (
    CART_EVENT,
    DWELL_EVENT,
    ORDER_EVENT,
    TRY_ON_EVENTS,
    Filters,
)
from service.analytics.duck_engine import MAX_DWELL_PASSES, ReportOverMemory, sql_literal
from service.analytics.engines import AnalyticsRuntime

TRY_ONS = (
    "e.sku IS NOT NULL AND e.event IN ("
    + ", ".join(sql_literal(e) for e in TRY_ON_EVENTS)
    + ")"
)
CONVERSIONS = ", ".join(sql_literal(e) for e in (CART_EVENT, ORDER_EVENT))
DWELLS = f"e.sku IS NOT NULL AND e.event = {sql_literal(DWELL_EVENT)} AND e.dwell_ms IS NOT NULL"


def distinct_pairs(keys: str) -> str:
    """Distinct (group, shopper) pairs among try-ons, the group as one hashed key."""
    return f"""
        SELECT count(*) FROM (
            SELECT hash({keys}) AS g, e.shopper_key, count(*) AS n
            FROM __EVENTS__ e WHERE {TRY_ONS} GROUP BY ALL
        )
    """


def dwell_quantiles(keys: str, passes: int = 1, part: int = 0) -> str:
    """Dwell count and p50/p90 per group; with passes > 1 only the groups whose hash falls in
    `part` (how the service splits percentiles that do not fit its memory limit)."""
    split = f" AND hash({keys}) % {passes} = {part}" if passes > 1 else ""
    return f"""
        SELECT count(*) FROM (
            SELECT {keys}, count(*), quantile_cont(e.dwell_ms, [0.5, 0.9])
            FROM __EVENTS__ e WHERE {DWELLS}{split} GROUP BY ALL
        )
    """


Run = Callable[[str], list[tuple[Any, ...]]]


class Core:
    """One core aggregation: its SQL run to a row count."""

    def __init__(self, sql: str) -> None:
        self.sql = sql

    def label(self) -> str:
        return ""

    def __call__(self, run: Run) -> int:
        return int(run(self.sql)[0][0])


class DwellCore(Core):
    """The dwell percentiles in as few passes over disjoint groups as fit the memory limit
    (quantile_cont cannot spill; the service does the same, service.analytics.duck_dwell)."""

    def __init__(self, keys: str) -> None:
        super().__init__(dwell_quantiles(keys))
        self.keys = keys
        self.passes = 1

    def label(self) -> str:
        return f" ({self.passes} passes)" if self.passes > 1 else ""

    def __call__(self, run: Run) -> int:
        while True:
            try:
                return sum(
                    int(run(dwell_quantiles(self.keys, self.passes, b))[0][0])
                    for b in range(self.passes)
                )
            except ReportOverMemory:
                if self.passes >= MAX_DWELL_PASSES:
                    raise
                self.passes *= 2


def first_try_on(keys: str) -> str:
    """The funnel's cohorts: the first try-on per (shopper, group)."""
    return f"""
        SELECT count(*) FROM (
            SELECT e.shopper_key, hash({keys}) AS g, min(e.timestamp)
            FROM __EVENTS__ e WHERE {TRY_ONS} GROUP BY ALL
        )
    """


def conversions_read() -> str:
    """The funnel's conversion events (single-sku carts and orders) read, nothing joined."""
    return f"""
        SELECT count(*), sum(hash(e.shopper_key, e.sku, e.timestamp))
        FROM __EVENTS__ e WHERE e.sku IS NOT NULL AND e.event IN ({CONVERSIONS})
    """


def naive_products(keys: str) -> str:
    return f"""
        SELECT count(*) FROM (
            SELECT {keys},
                count(*) FILTER (WHERE {TRY_ONS}),
                count(DISTINCT e.shopper_key) FILTER (WHERE {TRY_ONS}),
                quantile_cont(e.dwell_ms, [0.5, 0.9]) FILTER (WHERE {DWELLS})
            FROM __EVENTS__ e WHERE e.sku IS NOT NULL GROUP BY ALL
        )
    """


SV = "e.sku, e.variant"
SVCS = "e.sku, e.variant, e.channel, e.store_id"
# report -> (how the service calls it, {core aggregation: Core}, naive one-query SQL or None)
Report = Callable[[Any, Filters], Any]
CASES: dict[str, tuple[Report, dict[str, Core], str | None]] = {
    "products 90d by variant": (
        lambda s, f: s.product_summary(f, ("variant",)),
        {"distinct (sku, variant, shopper)": Core(distinct_pairs(SV)),
         "dwell p50/p90 by (sku, variant)": DwellCore(SV)},
        naive_products(SV),
    ),
    "products 90d by variant, channel, store": (
        lambda s, f: s.product_summary(f, ("variant", "channel", "store")),
        {"distinct (sku, variant, channel, store, shopper)": Core(distinct_pairs(SVCS)),
         "dwell p50/p90 by (sku, variant, channel, store)": DwellCore(SVCS)},
        naive_products(SVCS),
    ),
    "funnel 90d (72 h window)": (
        lambda s, f: s.funnel(f, 72.0, ()),
        {"first try-on per (shopper, sku)": Core(first_try_on("e.sku")),
         "conversion events read": Core(conversions_read())},
        None,
    ),
    "funnel 90d by channel (72 h)": (
        lambda s, f: s.funnel(f, 72.0, ("channel",)),
        {"first try-on per (shopper, sku, channel)": Core(first_try_on("e.sku, e.channel")),
         "conversion events read": Core(conversions_read())},
        None,
    ),
}


def _served(call: Report, rt: AnalyticsRuntime, s: Any, f: Filters) -> Callable[[], Any]:
    return lambda: call(rt.source(s), f)


def _timed_or_over(fn: Callable[[], Any], runs: int) -> tuple[dict[str, Any], Any]:
    """timed(fn) and fn's result, or NaN times with over_memory (and None) when it needs
    more than the memory limit."""
    try:
        t, out = timed(fn, runs)
    except ReportOverMemory:
        return {"p50_ms": math.nan, "p95_ms": math.nan, "over_memory": True}, None
    return {**t, "over_memory": False}, out


def bench(rt: AnalyticsRuntime, sessions: Any, runs: int) -> list[dict[str, Any]]:
    f90 = Filters(END - timedelta(days=DAYS), END)
    rows: list[dict[str, Any]] = []
    with sessions() as s:
        state = rt.lake.read_state()

        def run(sql: str) -> list[tuple[Any, ...]]:
            return rt.duck.query(s, state, sql, [])

        for report, (call, cores, naive) in CASES.items():
            served, _ = _timed_or_over(_served(call, rt, s, f90), runs)
            bound = {"p50_ms": 0.0, "p95_ms": 0.0}
            for label, core in cores.items():
                t, n = _timed_or_over(partial(core, run), runs)
                rows.append({"report": report, "what": f"core: {label}{core.label()}",
                             "groups": n, **t})
                bound = {k: bound[k] + t[k] for k in bound}
            rows.append({"report": report, "what": "lower bound (sum of the cores)",
                         "groups": None, **bound, "over_memory": False})
            if naive is not None:
                t, out = _timed_or_over(partial(run, naive), runs)
                n = None if out is None else int(out[0][0])
                rows.append({"report": report, "what": "naive one query", "groups": n, **t})
            rows.append({"report": report, "what": "as served", "groups": None, **served})
            print(f"  {report}: served {served['p50_ms']:.0f} ms, bound "
                  f"{bound['p50_ms']:.0f} ms", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--lake", type=Path, default=None,
                    help="keep the lake here (reused when it already holds one)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.lake or Path(tmp)
        rt, sessions, written = open_lake(root, args.events)
        try:
            events = rt.lake.read_state().rows(None, None)
            rows = bench(rt, sessions, args.runs)
        finally:
            rt.close()
    target = TARGET_P95_MS.get(events)
    table = [
        {
            "report (SYNTHETIC)": r["report"],
            "what is timed": r["what"],
            "rows": "" if r["groups"] is None else f"{r['groups']:,}",
            "p50 ms": "over the memory limit" if r["over_memory"] else r["p50_ms"],
            "p95 ms": "" if r["over_memory"] else r["p95_ms"],
            **({f"p95 < {target:g} ms": "yes" if r["p95_ms"] < target else "NO"}
               if target else {}),
        }
        for r in rows
    ]
    machine = machine_info()
    cmd = f"python -m benchmarks.analytics_bounds --events {events} --runs {args.runs}"
    md = "\n".join([
        f"# Lower bounds of the slow lake reports at {events:,} SYNTHETIC events",
        "",
        f"`{cmd}`",
        "",
        "Each report's core aggregation alone (exact unique shoppers: distinct (group, "
        "shopper) pairs; exact quantile_cont dwell percentiles; the funnel's first try-on "
        "per shopper and product and the read of its conversion events), in the "
        "fastest DuckDB formulation found (hashed group key, no identity-link join, no "
        "group values returned), through the service's "
        "DuckDB engine (2 threads, 1 GB). Their sum is what the report costs before it "
        "does anything else; 'naive one query' is count(DISTINCT) with a FILTERed "
        "quantile_cont in one GROUP BY. 'rows' = what the core produces (pairs, groups, "
        "cohorts) or, for the conversions, reads.",
        "",
        markdown_table(table),
        "",
        *([f"- lake written in {written:.0f} s"] if written is not None else []),
        f"Machine: {machine['cpu']}, {machine['cpus']} CPUs, load {machine['load_avg_1m']}; "
        f"{machine['time']}.",
    ])
    print(md)
    write_report(f"analytics_bounds_{events / 1e6:g}m",
                 {"args": {**vars(args), "lake": str(args.lake)}, "machine": machine,
                  "events": events, "rows": rows}, md)


if __name__ == "__main__":
    main()
