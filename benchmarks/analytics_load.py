"""Analytics query latency (p50/p95) at 1M SYNTHETIC events on SQLite and PostgreSQL, and
offers latency under concurrent load.

Events are SYNTHETIC (seeded generator), bulk-loaded with executemany (SQLite) and COPY
(PostgreSQL), not through ingest (its throughput is the events benchmark's job); the daily
rollups are then built with rollups.rebuild (timed), and 5,000 SYNTHETIC identity links
join 10,000 shoppers in pairs. Each "counts" query (rollups + raw edge days) runs next to the
raw-event query it replaces, in the same run.
Run: `python -m benchmarks.analytics_load [--events 1000000] [--backends sqlite,postgres]`.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import delete, insert

from benchmarks.common import RESULTS, write_report
from service.analytics import queries, rollups
from service.analytics.definitions import Filters
from service.analytics.fitgap import Frame, consented_face_widths, fit_gap
from service.analytics.models import DailyProduct, DailyShade
from service.db.engine import make_engine, make_sessionmaker
from service.db.migrate import upgrade
from service.identity.models import ShopperAlias, ShopperGroup
from service.identity.service import rebuild_groups
from service.offers.ranking import Item
from service.offers.service import OfferPolicy, StatsCache, get_offers
from service.touchpoints.models import Event
from service.touchpoints.service import Ingestor
from service.wiring import ingest_hooks

PG_ADMIN = os.environ.get("TRYON_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
END = datetime(2026, 6, 1, tzinfo=UTC)
DAYS = 90
N_SKUS, N_SHOPPERS = 40, 50_000
EVENT_MIX = {
    "Frame Applied": 0.38,
    "Try-On Dwell": 0.34,
    "Shade Applied": 0.10,
    "Product Added": 0.07,
    "Order Completed": 0.03,
    "Feedback Submitted": 0.02,
    "Try-On Started": 0.06,
}
CHANNELS = ["web", "kiosk", "app", "store_staff", "call_centre"]


def synthetic_rows(n: int, seed: int = 1) -> list[dict[str, Any]]:
    """SYNTHETIC events: Zipf-ish products, 50k shoppers, 90 days, 5 channels, 20 stores."""
    rng = np.random.default_rng(seed)
    names = list(EVENT_MIX)
    kinds = rng.choice(len(names), size=n, p=list(EVENT_MIX.values()))
    skus = np.minimum(rng.zipf(1.6, size=n), N_SKUS) - 1
    shoppers = rng.integers(0, N_SHOPPERS, size=n)
    secs = rng.integers(0, DAYS * 86400, size=n)
    chans = rng.integers(0, len(CHANNELS), size=n)
    stores = rng.integers(0, 20, size=n)
    dwell = rng.lognormal(9.5, 0.8, size=n).astype(int)
    start = END - timedelta(days=DAYS)
    now = datetime.now(UTC)
    rows = []
    for i in range(n):
        name = names[kinds[i]]
        sku = f"SKU-{skus[i]:02d}"
        props: dict[str, Any] = {}
        row = {
            "message_id": uuid.uuid4().hex,
            "event": name,
            "anonymous_id": f"shopper-{shoppers[i]}",
            "user_id": None,
            "shopper_id": f"shopper-{shoppers[i]}",
            "session_id": None,
            "channel": CHANNELS[chans[i]],
            "store_id": f"store-{stores[i]}",
            "kiosk_id": None,
            "sku": None,
            "variant": None,
            "shade": None,
            "dwell_ms": None,
            "price": None,
            "currency": None,
            "timestamp": start + timedelta(seconds=int(secs[i])),
            "received_at": now,
            "source": "bench",
            "context": {},
        }
        if name in ("Frame Applied", "Try-On Dwell", "Product Added", "Order Completed"):
            row["sku"], row["variant"] = sku, ("black", "tortoise", "gold")[i % 3]
        if name == "Try-On Dwell":
            row["dwell_ms"] = int(dwell[i])
        if name == "Shade Applied":
            row["shade"] = f"shade-{skus[i] % 16}"
            props = {"consent": True, "monk_index": int(1 + i % 10)}
        if name == "Feedback Submitted":
            props = {"nps": int(i % 11)}
        if name == "Try-On Started":
            props = {"consent": True, "face_width_mm": round(float(rng.normal(138, 7)), 1)}
        row["properties"] = props
        rows.append(row)
    return rows


N_LINKS = 5_000


def links() -> list[dict[str, Any]]:
    """SYNTHETIC identity links: shopper-i and shopper-(i + N_SHOPPERS/2), for 5,000 i."""
    now = datetime.now(UTC)
    step = N_SHOPPERS // 2 // N_LINKS
    return [
        {
            "shopper_id": f"shopper-{i}",
            "alias_id": f"shopper-{i + N_SHOPPERS // 2}",
            "source": "bench",
            "created_at": now,
        }
        for i in range(0, N_SHOPPERS // 2, step)
    ]


def build_rollups(url: str) -> float:
    engine = make_engine(url)
    t0 = time.perf_counter()
    with engine.begin() as conn:
        rollups.rebuild(conn)
        conn.execute(insert(ShopperAlias), links())
        rebuild_groups(conn)
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return time.perf_counter() - t0


def load(url: str, rows: list[dict[str, Any]]) -> float:
    engine = make_engine(url)
    upgrade(engine)
    t0 = time.perf_counter()
    if engine.dialect.name == "postgresql":
        cols = [c for c in rows[0]]
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            with cur.copy(f"COPY events ({', '.join(cols)}) FROM STDIN") as cp:
                for r in rows:
                    cp.write_row(
                        [json.dumps(r[c]) if c in ("properties", "context") else r[c] for c in cols]
                    )
            raw.commit()
            # Steady state has autovacuum; after a bulk COPY, vacuum sets the visibility map
            # so index-only scans are possible, as they would be in production.
            pg = raw.driver_connection  # the psycopg connection; None only once invalidated
            assert pg is not None
            pg.autocommit = True
            pg.execute("VACUUM ANALYZE events")
        finally:
            raw.close()
    else:
        with engine.begin() as conn:
            for i in range(0, len(rows), 50_000):
                conn.execute(insert(Event), rows[i : i + 50_000])
            conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return time.perf_counter() - t0


def timed(fn: Callable[[], Any], runs: int) -> dict[str, float]:
    fn()  # warm-up (plans, page cache)
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1000)
    ts.sort()
    return {"p50_ms": statistics.median(ts), "p95_ms": float(np.percentile(ts, 95)), "runs": runs}


BASELINE_QUERIES = ("products 90d by variant", "funnel 90d (72 h window)", "fit-gap 90d")


def baseline_without_indexes(
    engine: Any, factory: Any, cases: dict[str, Any], runs: int
) -> dict[str, Any]:
    """The same queries with migration 0003_analytics's two indexes dropped (then restored)."""
    import importlib.util

    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    from service.db.migrate import MIGRATIONS_DIR

    spec = importlib.util.spec_from_file_location(
        "mig_0003_analytics", MIGRATIONS_DIR / "versions" / "0003_analytics.py"
    )
    mig = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mig)  # type: ignore[union-attr]

    def run(step: str) -> None:
        with engine.begin() as conn, Operations.context(MigrationContext.configure(conn)):
            getattr(mig, step)()
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("ANALYZE")

    run("downgrade")
    out = {}
    try:
        for name in BASELINE_QUERIES:
            with factory() as s:
                out[name] = timed(functools.partial(cases[name], s), max(2, runs // 2))
            print(f"  baseline (no analytics indexes) {name}: {out[name]}", flush=True)
    finally:
        run("upgrade")
    return out


LINK_QUERIES = ("products 90d by variant", "funnel 90d (72 h window)", "shades 90d by skin tone")


def baseline_without_groups(
    engine: Any, factory: Any, cases: dict[str, Any], runs: int
) -> dict[str, Any]:
    """The same queries with analytics_shopper_groups emptied (no linked ids to merge)."""
    with engine.begin() as conn:
        conn.execute(delete(ShopperGroup))
    out = {}
    try:
        for name in LINK_QUERIES:
            with factory() as s:
                out[name] = timed(functools.partial(cases[name], s), max(2, runs // 2))
            print(f"  baseline (no identity groups) {name}: {out[name]}", flush=True)
    finally:
        with engine.begin() as conn:
            rebuild_groups(conn)
    return out


def bench_backend(url: str, n: int, runs: int, rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"load_s": load(url, rows)}
    out["rollup_rebuild_s"] = build_rollups(url)
    engine = make_engine(url, pool_size=8) if "postgresql" in url else make_engine(url)
    factory = make_sessionmaker(engine)
    first_day = END - timedelta(days=DAYS)
    last7 = Filters(start=END - timedelta(days=7), end=END)
    everything = Filters(start=first_day, end=END)
    # Not on day boundaries: two partial edge days come from raw events.
    ragged = Filters(start=first_day + timedelta(hours=9), end=END - timedelta(hours=7))
    kiosk = Filters(first_day, END, "kiosk")
    frames = [Frame(f"SKU-{i:02d}", 126.0 + i % 10 * 2) for i in range(N_SKUS)]
    cases: dict[str, Callable[[Any], Any]] = {
        "products 7d by variant": lambda s: queries.product_summary(s, last7, ("variant",)),
        "products 90d by variant": lambda s: queries.product_summary(s, everything, ("variant",)),
        "products 90d kiosk by day": lambda s: queries.product_summary(s, kiosk, ("day",)),
        "counts: products 7d by variant": lambda s: queries.product_summary(
            s, last7, ("variant",), "counts"
        ),
        "counts: products 90d by variant": lambda s: queries.product_summary(
            s, everything, ("variant",), "counts"
        ),
        "counts: products 90d by variant, ragged edges": lambda s: queries.product_summary(
            s, ragged, ("variant",), "counts"
        ),
        "counts: products 90d kiosk by day": lambda s: queries.product_summary(
            s, kiosk, ("day",), "counts"
        ),
        "funnel 7d (72 h window)": lambda s: queries.funnel(s, last7, 72.0),
        "funnel 90d (72 h window)": lambda s: queries.funnel(s, everything, 72.0),
        "nps 90d by channel": lambda s: queries.nps(s, everything),
        "shades 90d by skin tone": lambda s: queries.shade_popularity(s, everything, True),
        "counts: shades 90d by skin tone": lambda s: queries.shade_popularity(
            s, everything, True, "counts"
        ),
        "counts: shades 90d by skin tone, ragged edges": lambda s: queries.shade_popularity(
            s, ragged, True, "counts"
        ),
        "fit-gap 90d": lambda s: fit_gap(consented_face_widths(s, everything), frames),
    }
    with factory() as s:
        # The rollup path must give the raw path's numbers here too (tests check it in detail).
        for f in (everything, ragged, kiosk):
            raw = {(r["sku"], r["variant"]): r for r in queries.product_summary(s, f)}
            fast = {
                (r["sku"], r["variant"]): r for r in queries.product_summary(s, f, metrics="counts")
            }
            assert {k: r["try_ons"] for k, r in raw.items()} == {
                k: r["try_ons"] for k, r in fast.items()
            }
            assert all(r["dwell_events"] == fast[k]["dwell_events"] for k, r in raw.items())
        out["rollup_rows"] = {
            m.__tablename__: s.query(m).count() for m in (DailyProduct, DailyShade)
        }
    print(f"  rollups match raw; rows {out['rollup_rows']}", flush=True)
    out["queries"] = {}
    for name, q in cases.items():
        with factory() as s:
            out["queries"][name] = timed(functools.partial(q, s), runs)
        print(f"  {name}: {out['queries'][name]}", flush=True)
    out["without_analytics_indexes"] = baseline_without_indexes(engine, factory, cases, runs)
    out["without_identity_groups"] = baseline_without_groups(engine, factory, cases, runs)

    items = {
        f"SKU-{i:02d}": Item(
            f"SKU-{i:02d}",
            f"Frame {i}",
            ("round", "aviator", "cat-eye")[i % 3],
            ("black", "tortoise", "gold"),
            126.0 + i % 10 * 2,
        )
        for i in range(N_SKUS)
    }
    cache = StatsCache(ttl_s=3600)
    # The offer rules as the service builds them, with no frequency cap in the way.
    policy = OfferPolicy(frequency_cap=10**6)
    ingest = Ingestor(ingest_hooks())
    t0 = time.perf_counter()
    with factory() as s:
        cache.get(s, END)
    out["offers_stats_refresh_ms"] = (time.perf_counter() - t0) * 1000

    def one(i: int) -> float:
        t = time.perf_counter()
        with factory.begin() as s:
            get_offers(
                s,
                policy,
                ingest,
                items,
                cache,
                f"shopper-{i * 7919 % N_SHOPPERS}",
                limit=5,
                now=END,
            )
        return (time.perf_counter() - t) * 1000

    for threads in (1, 4):
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, range(10)))
            t0 = time.perf_counter()
            lat = sorted(pool.map(one, range(1000, 1000 + 200)))
            wall = time.perf_counter() - t0
        out[f"offers_{threads}_threads"] = {
            "p50_ms": statistics.median(lat),
            "p95_ms": float(np.percentile(lat, 95)),
            "requests": len(lat),
            "rps": len(lat) / wall,
        }
        print(f"  offers {threads} threads: {out[f'offers_{threads}_threads']}", flush=True)
    engine.dispose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument(
        "--merge", action="store_true", help="keep other backends' results from the last run's JSON"
    )
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = synthetic_rows(args.events)
    print(
        f"SYNTHETIC: generated {len(rows)} events in {time.perf_counter() - t0:.1f} s", flush=True
    )
    res: dict[str, Any] = {
        "label": "SYNTHETIC events",
        "events": args.events,
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "backends": {},
    }
    previous = RESULTS / "analytics_load.json"
    if args.merge and previous.is_file():
        old = json.loads(previous.read_text())
        if old.get("events") == args.events:
            res["backends"].update(old["backends"])
    for backend in args.backends.split(","):
        print(f"{backend}:", flush=True)
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                res["backends"]["sqlite"] = bench_backend(
                    f"sqlite:///{tmp}/bench.sqlite", args.events, args.runs, rows
                )
        else:
            import psycopg

            name = f"tryon_bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(PG_ADMIN, autocommit=True) as c:
                c.execute(f'CREATE DATABASE "{name}"')
            try:
                url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
                res["backends"]["postgres"] = bench_backend(url, args.events, args.runs, rows)
            finally:
                with psycopg.connect(PG_ADMIN, autocommit=True) as c:
                    c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    lines = [
        f"# Analytics and offers latency at {args.events:,} SYNTHETIC events",
        "",
        f"{res['machine']}, {res['cpus']} CPUs",
        "",
        "| query | " + " | ".join(f"{b} p50 ms | {b} p95 ms" for b in res["backends"]) + " |",
        "|---|" + "---|---|" * len(res["backends"]),
    ]
    names = next(iter(res["backends"].values()))["queries"]
    for q in names:
        cells = [
            f"{v['queries'][q]['p50_ms']:.0f} | {v['queries'][q]['p95_ms']:.0f}"
            for v in res["backends"].values()
        ]
        lines.append(f"| {q} | " + " | ".join(cells) + " |")
    for q in BASELINE_QUERIES:
        cells = []
        for v in res["backends"].values():
            b = v.get("without_analytics_indexes", {}).get(q)
            ratio = b["p50_ms"] / v["queries"][q]["p50_ms"] if b else float("nan")
            cells.append(
                f"{b['p50_ms']:.0f} ({ratio:.1f}x slower) | {b['p95_ms']:.0f}" if b else "- | -"
            )
        lines.append(
            f"| baseline: {q}, without 0003_analytics indexes | " + " | ".join(cells) + " |"
        )
    for q in LINK_QUERIES:
        cells = []
        for v in res["backends"].values():
            b = v.get("without_identity_groups", {}).get(q)
            ratio = v["queries"][q]["p50_ms"] / b["p50_ms"] if b else float("nan")
            cells.append(
                f"{b['p50_ms']:.0f} (linked: {ratio:.2f}x) | {b['p95_ms']:.0f}" if b else "- | -"
            )
        lines.append(f"| baseline: {q}, identity links not merged | " + " | ".join(cells) + " |")
    for k in ("offers_1_threads", "offers_4_threads"):
        cells = [f"{v[k]['p50_ms']:.1f} | {v[k]['p95_ms']:.1f}" for v in res["backends"].values()]
        lines.append(f"| offers, {k.split('_')[1]} thread(s) | " + " | ".join(cells) + " |")
    lines += [
        "",
        "bulk load s: " + ", ".join(f"{b} {v['load_s']:.0f}" for b, v in res["backends"].items()),
        "rollup rows (product, shade): "
        + ", ".join(
            f"{b} {v['rollup_rows']['analytics_daily_product']:,} / "
            f"{v['rollup_rows']['analytics_daily_shade']:,}"
            for b, v in res["backends"].items()
        ),
        "rollup rebuild from raw s: "
        + ", ".join(f"{b} {v['rollup_rebuild_s']:.1f}" for b, v in res["backends"].items()),
        "offer stats refresh ms (cached 5 min): "
        + ", ".join(f"{b} {v['offers_stats_refresh_ms']:.0f}" for b, v in res["backends"].items()),
    ]
    table = "\n".join(lines)
    print(table)
    write_report("analytics_load", res, table)


if __name__ == "__main__":
    main()
