"""The event lake and DuckDB against the SQL store, at 1M (or more) SYNTHETIC events.

Bulk-loads SYNTHETIC events (COPY on PostgreSQL, executemany on SQLite; not through ingest),
links 10,000 of the 50,000 SYNTHETIC shoppers in pairs, exports the lake, then times every
report on DuckDB (through AnalyticsRuntime.source: freshness check, manifest, linked ids
from SQL) and on the SQL store in the same run, checks that both give the same rows, and
measures: the process's memory peak during the DuckDB reports (DuckDB memory_limit 1GB,
2 threads), the lake's size, the time to bring the lake up to date after a burst of 100k
events, and the time to erase one shopper (SQL + lake) with a byte check of the lake's files.

Run: `python -m benchmarks.analytics_lake [--events 1000000] [--backend postgres] [--runs 7]`;
`--backend none` times DuckDB alone on a lake written directly (the 100M run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import insert
from sqlalchemy.orm import Session

from benchmarks.analytics_load import CHANNELS, DAYS, END, EVENT_MIX, N_SHOPPERS, N_SKUS
from benchmarks.common import machine_info, markdown_table, write_report
from service.analytics.definitions import Filters
from service.analytics.engines import AnalyticsRuntime, EngineName, build_analytics
from service.analytics.fitgap import Frame, fit_gap
from service.db.engine import make_engine, make_sessionmaker
from service.db.migrate import upgrade
from service.identity.models import ShopperAlias
from service.identity.service import rebuild_groups
from service.settings import Settings
from service.shoppers.erasure import erase_shopper
from service.touchpoints.models import Event
from service.wiring import erasers

PG_ADMIN = os.environ.get("TRYON_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
# The same SYNTHETIC shape as the SQL-store benchmark (one definition, compared side by side).
N_LINKS = 5_000
MIX = EVENT_MIX
COLS = [
    "message_id", "event", "anonymous_id", "user_id", "shopper_id", "channel", "store_id",
    "sku", "variant", "shade", "dwell_ms", "timestamp", "received_at", "source", "properties",
    "context",
]  # fmt: skip
VICTIM = "shopper-bench-erase-4d1f9e"


def synthetic(n: int, seed: int, start: datetime, days: int) -> Iterator[list[dict[str, Any]]]:
    """SYNTHETIC events in chunks of 100k: Zipf-ish products, 50k shoppers, 5 channels,
    20 stores; 2 % of orders are two-line orders (no sku column)."""
    rng = np.random.default_rng(seed)
    names = list(MIX)
    now = datetime.now(UTC)
    for lo in range(0, n, 100_000):
        m = min(100_000, n - lo)
        kinds = rng.choice(len(names), size=m, p=list(MIX.values()))
        skus = np.minimum(rng.zipf(1.6, size=m), N_SKUS) - 1
        shoppers = rng.integers(0, N_SHOPPERS, size=m)
        secs = rng.integers(0, days * 86400, size=m)
        chans = rng.integers(0, len(CHANNELS), size=m)
        stores = rng.integers(0, 20, size=m)
        dwell = rng.lognormal(9.5, 0.8, size=m).astype(int)
        widths = rng.normal(138, 7, size=m)
        rows = []
        for i in range(m):
            name = names[kinds[i]]
            sku = f"SKU-{skus[i]:02d}"
            who = f"shopper-{shoppers[i]}"
            r: dict[str, Any] = {
                "message_id": uuid.uuid4().hex,
                "event": name,
                "anonymous_id": who,
                "user_id": None,
                "shopper_id": who,
                "channel": CHANNELS[chans[i]],
                "store_id": f"store-{stores[i]}",
                "sku": None,
                "variant": None,
                "shade": None,
                "dwell_ms": None,
                "timestamp": start + timedelta(seconds=int(secs[i])),
                "received_at": now,
                "source": "bench",
                "properties": {},
                "context": {},
            }
            if name in ("Frame Applied", "Try-On Dwell", "Product Added", "Order Completed"):
                r["sku"], r["variant"] = sku, ("black", "tortoise", "gold")[i % 3]
            if name == "Order Completed" and i % 50 == 0:
                r["sku"] = r["variant"] = None
                r["properties"] = {"products": [{"sku": sku}, {"sku": "SKU-00"}]}
            if name == "Try-On Dwell":
                r["dwell_ms"] = int(dwell[i])
            if name == "Shade Applied":
                r["shade"] = f"shade-{skus[i] % 16}"
                r["properties"] = {"consent": True, "monk_index": int(1 + i % 10)}
            if name == "Feedback Submitted":
                r["properties"] = {"nps": int(i % 11)}
            if name == "Try-On Started":
                r["properties"] = {"consent": True, "face_width_mm": round(float(widths[i]), 1)}
            rows.append(r)
        yield rows


def load(url: str, chunks: Iterator[list[dict[str, Any]]]) -> int:
    engine = make_engine(url)
    n = 0
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            for rows in chunks:
                with cur.copy(f"COPY events ({', '.join(COLS)}) FROM STDIN") as cp:
                    for r in rows:
                        cp.write_row(
                            [
                                json.dumps(r[c]) if c in ("properties", "context") else r[c]
                                for c in COLS
                            ]
                        )
                n += len(rows)
            raw.commit()
            pg = raw.driver_connection  # the psycopg connection; None only once invalidated
            assert pg is not None
            pg.autocommit = True
            pg.execute("VACUUM ANALYZE events")
        finally:
            raw.close()
    else:
        with engine.begin() as conn:
            for rows in chunks:
                conn.execute(insert(Event), rows)
                n += len(rows)
            conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return n


def link_pairs(url: str) -> None:
    """SYNTHETIC identity links: shopper-i and shopper-(i + 25,000), for 5,000 i."""
    engine = make_engine(url)
    now = datetime.now(UTC)
    step = N_SHOPPERS // 2 // N_LINKS
    with engine.begin() as conn:
        conn.execute(
            insert(ShopperAlias),
            [
                {
                    "shopper_id": f"shopper-{i}",
                    "alias_id": f"shopper-{i + N_SHOPPERS // 2}",
                    "source": "bench",
                    "created_at": now,
                }
                for i in range(0, N_SHOPPERS // 2, step)
            ],
        )
        rebuild_groups(conn)
    engine.dispose()


class RssPeak:
    """The process's resident memory peak while the block runs (sampled every 5 ms)."""

    def __enter__(self) -> RssPeak:
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        self.peak = max(self.peak, int(line.split()[1]) * 1024)
            time.sleep(0.005)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()


def timed(fn: Callable[[], Any], runs: int) -> tuple[dict[str, float], Any]:
    out = fn()  # warm-up (plans, page cache)
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": statistics.median(ts), "p95_ms": float(np.percentile(ts, 95))}, out


FRAMES = [Frame(f"F-{w}", float(w)) for w in (122, 126, 130, 134, 138, 146)]
LAST_DAY = END - timedelta(days=1)


def reports(f90: Filters, f7: Filters) -> dict[str, Callable[[Any], Any]]:
    kiosk = Filters(f90.start, f90.end, channel="kiosk")
    return {
        "products 7d by variant": lambda s: s.product_summary(f7, ("variant",)),
        "products 90d by variant": lambda s: s.product_summary(f90, ("variant",)),
        "products 90d kiosk by day": lambda s: s.product_summary(kiosk, ("day",)),
        "products 90d by variant, channel, store": lambda s: s.product_summary(
            f90, ("variant", "channel", "store")
        ),
        "funnel 7d (72 h window)": lambda s: s.funnel(f7, 72.0, ()),
        "funnel 90d (72 h window)": lambda s: s.funnel(f90, 72.0, ()),
        "funnel 90d by channel (72 h)": lambda s: s.funnel(f90, 72.0, ("channel",)),
        "shades 90d by skin tone": lambda s: s.shade_popularity(f90, True),
        "nps 90d by channel": lambda s: s.nps(f90),
        "fit-gap 90d": lambda s: fit_gap(np.sort(s.consented_face_widths(f90)), FRAMES),
    }


def on_source(
    rt: AnalyticsRuntime, s: Session, fn: Callable[[Any], Any], engine: EngineName | None = None
) -> Callable[[], Any]:
    """fn on the runtime's report source, picked on every call (freshness check included)."""

    def call() -> Any:
        return fn(rt.source(s, engine))

    return call


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and abs(a - b) <= 1e-6 * max(1.0, abs(a))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def timed_erasure(
    sessions: Any, settings: Settings, lake_root: Path, shopper_id: str
) -> tuple[float, dict[str, int], int]:
    """Erase one shopper (SQL + lake): seconds, the erasers' counts, and how many files under
    the lake still hold the id's bytes afterwards."""
    t0 = time.perf_counter()
    with sessions.begin() as s:
        counts = erase_shopper(s, shopper_id, erasers(settings))
    secs = time.perf_counter() - t0
    needle = shopper_id.encode()
    left = sum(1 for p in lake_root.rglob("*") if p.is_file() and needle in p.read_bytes())
    return secs, counts, left


def bench(url: str, n: int, runs: int, lake_dir: str) -> dict[str, Any]:
    res: dict[str, Any] = {}
    t0 = time.perf_counter()
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    res["events"] = load(url, synthetic(n, 1, END - timedelta(days=DAYS), DAYS))
    link_pairs(url)
    res["load_s"] = time.perf_counter() - t0
    print(f"  loaded {res['events']:,} SYNTHETIC events in {res['load_s']:.0f} s", flush=True)
    settings = Settings(database_url=url, lake_dir=lake_dir, lake_max_staleness_s=3600)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    rt: AnalyticsRuntime = build_analytics(settings, engine)
    with RssPeak() as mem:
        first = rt.lake.export(engine)
    state = rt.lake.read_state()
    res["first_export_s"] = first.seconds
    res["export_rss_peak_mb"] = mem.peak / 2**20
    res["lake_mb"] = state.bytes() / 2**20
    res["lake_files"] = sum(len(v) for v in state.files.values())
    print(f"  first export {first.seconds:.1f} s, lake {res['lake_mb']:.1f} MB", flush=True)

    f90 = Filters(END - timedelta(days=DAYS), END)
    f7 = Filters(END - timedelta(days=7), END)
    res["queries"] = {}
    with RssPeak() as mem:
        for name, fn in reports(f90, f7).items():
            with sessions() as s:
                duck_t, duck_rows = timed(on_source(rt, s, fn), runs)
                sql_t, sql_rows = timed(on_source(rt, s, fn, "sql"), runs)
            same = _close(duck_rows, sql_rows)
            res["queries"][name] = {"duckdb": duck_t, "sql": sql_t, "same_numbers": same}
            print(
                f"  {name}: duckdb {duck_t['p50_ms']:.0f}/{duck_t['p95_ms']:.0f} ms, "
                f"sql {sql_t['p50_ms']:.0f}/{sql_t['p95_ms']:.0f} ms, same={same}",
                flush=True,
            )
    res["reports_rss_peak_mb"] = mem.peak / 2**20

    # A burst of 100k SYNTHETIC events (the last 3 days, so some land in old partitions),
    # then one report: the freshness check brings the lake up to date first.
    load(url, synthetic(100_000, 2, END - timedelta(days=3), 3))
    t1 = time.perf_counter()
    burst = rt.lake.export(engine)
    res["burst_100k_export_s"] = time.perf_counter() - t1
    res["burst_rows"] = burst.rows
    print(f"  100k burst brought up to date in {res['burst_100k_export_s']:.1f} s", flush=True)

    # Erase one shopper (with a linked id) from SQL and lake.
    load(
        url,
        iter(
            [
                [
                    {
                        **r,
                        "anonymous_id": VICTIM,
                        "shopper_id": VICTIM,
                    }
                    for r in next(synthetic(40, 3, END - timedelta(days=DAYS), DAYS))
                ]
            ]
        ),
    )
    rt.lake.export(engine)
    lake_root = Path(rt.lake.root)
    files = [p for p in lake_root.rglob("*") if p.is_file()]
    assert any(VICTIM.encode() in p.read_bytes() for p in files)
    secs, counts, left = timed_erasure(sessions, settings, lake_root, VICTIM)
    res["erase_one_shopper_s"] = secs
    res["erase_counts"] = counts
    res["erased_id_bytes_left_in_lake_files"] = left
    print(f"  erased one shopper in {secs:.2f} s: {counts}", flush=True)

    # A shopper who has been around all along: rows in every day's compacted file, so every
    # file of the lake is rewritten. Not a linked id, and no other id contains its text.
    secs, counts, left = timed_erasure(sessions, settings, lake_root, f"shopper-{N_SHOPPERS - 1}")
    res["erase_resident_shopper_s"] = secs
    res["erase_resident_counts"] = counts
    res["resident_id_bytes_left_in_lake_files"] = left
    print(f"  erased a resident shopper in {secs:.1f} s: {counts}", flush=True)
    rt.close()
    engine.dispose()
    return res


def open_lake(
    root: Path, events: int, *, links: bool = True
) -> tuple[AnalyticsRuntime, Any, float | None]:
    """The runtime over the SYNTHETIC lake in root (benchmarks.synthetic_lake), written first
    when root holds none (the seconds it took, else None). The identity links (link_pairs
    unless links=False) live in a SQLite store, as in any deployment the small tables join
    in from SQL."""
    from benchmarks.synthetic_lake import write_lake

    url = f"sqlite:///{root}/links.sqlite"
    if not (root / "lake").exists():
        root.mkdir(parents=True, exist_ok=True)
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        if links:
            link_pairs(url)
    settings = Settings(database_url=url, lake_dir=str(root / "lake"),
                        lake_max_staleness_s=10**9)
    engine = make_engine(url)
    rt = build_analytics(settings, engine)
    written = None
    if rt.lake.read_state().rows() == 0:
        t0 = time.perf_counter()
        write_lake(rt.lake, events, start=END - timedelta(days=DAYS), days=DAYS)
        written = time.perf_counter() - t0
    return rt, make_sessionmaker(engine), written


def bench_lake_only(n: int, runs: int, tmp: str) -> dict[str, Any]:
    """DuckDB alone on a lake written directly (benchmarks.synthetic_lake): the 100M run, where
    a PostgreSQL bulk load and its reports would take hours here."""
    res: dict[str, Any] = {}
    with RssPeak() as mem:
        rt, sessions, res["first_export_s"] = open_lake(Path(tmp), n)
    res["events"] = rt.lake.read_state().rows()
    res["export_rss_peak_mb"] = mem.peak / 2**20
    state = rt.lake.read_state()
    res["lake_mb"] = state.bytes() / 2**20
    res["lake_files"] = sum(len(v) for v in state.files.values())
    print(
        f"  wrote {n:,} SYNTHETIC events into the lake in {res['first_export_s']:.0f} s", flush=True
    )
    f90 = Filters(END - timedelta(days=DAYS), END)
    f7 = Filters(END - timedelta(days=7), END)
    res["queries"] = {}
    with RssPeak() as mem:
        for name, fn in reports(f90, f7).items():
            with sessions() as s:
                duck_t, _ = timed(on_source(rt, s, fn), runs)
            res["queries"][name] = {"duckdb": duck_t}
            print(f"  {name}: duckdb {duck_t['p50_ms']:.0f}/{duck_t['p95_ms']:.0f} ms", flush=True)
    res["reports_rss_peak_mb"] = mem.peak / 2**20
    rt.close()
    rt.db.dispose()
    return res


# The targets for every report's DuckDB p95 on 2 cores, by lake size.
TARGET_P95_MS = {10_000_000: 300.0, 100_000_000: 3000.0}


def report_rows(queries: dict[str, Any], sql: str | None, events: int) -> list[dict[str, Any]]:
    """One table row per report: DuckDB p50/p95, the SQL store's beside it (same run), and
    whether the p95 meets the target at this size."""
    target = TARGET_P95_MS.get(events)
    rows = []
    for q, v in queries.items():
        row: dict[str, Any] = {
            "report (SYNTHETIC)": q,
            "duckdb p50 ms": v["duckdb"]["p50_ms"],
            "duckdb p95 ms": v["duckdb"]["p95_ms"],
        }
        if sql is not None:
            row[f"{sql} p50 ms"] = v["sql"]["p50_ms"]
            row[f"{sql} p95 ms"] = v["sql"]["p95_ms"]
            row["speed-up (p50)"] = v["sql"]["p50_ms"] / v["duckdb"]["p50_ms"]
            row["same numbers"] = "yes" if v["same_numbers"] else "NO"
        if target is not None:
            ok = v["duckdb"]["p95_ms"] < target
            row[f"p95 < {target:g} ms"] = "yes" if ok else "NO"
        rows.append(row)
    return rows


def main_lake_only(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        res = bench_lake_only(args.events, args.runs, tmp)
    rows = report_rows(res["queries"], None, args.events)
    machine = machine_info()
    md = "\n".join(
        [
            f"# Event lake + DuckDB alone at {args.events:,} SYNTHETIC events",
            "",
            f"`python -m benchmarks.analytics_lake --events {args.events} --backend none "
            f"--runs {args.runs}`",
            "",
            "DuckDB only: the lake is written directly by benchmarks/synthetic_lake.py (the",
            "same SYNTHETIC shape, through the lake's own writer); no PostgreSQL column,",
            "because loading and scanning 100M rows in PostgreSQL takes hours on this machine.",
            "",
            markdown_table(rows),
            "",
            f"- lake written in {res['first_export_s']:.0f} s (RSS peak "
            f"{res['export_rss_peak_mb']:.0f} MB): {res['lake_mb']:.0f} MB in "
            f"{res['lake_files']} files (Parquet, LZ4)",
            f"- memory: process RSS peak during the reports {res['reports_rss_peak_mb']:.0f} MB "
            "(DuckDB memory_limit 1GB, 2 threads)",
            "",
            f"Machine: {machine['cpu']}, {machine['cpus']} CPUs, load {machine['load_avg_1m']}; "
            f"{machine['time']}.",
        ]
    )
    print(md)
    write_report(
        f"analytics_lake_{args.events / 1e6:g}m",
        {"args": vars(args), "machine": machine, **res},
        md,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--backend", default="postgres", choices=["postgres", "sqlite", "none"])
    args = ap.parse_args()
    if args.backend == "none":
        main_lake_only(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        if args.backend == "sqlite":
            res = bench(f"sqlite:///{tmp}/bench.sqlite", args.events, args.runs, f"{tmp}/lake")
        else:
            import psycopg

            name = f"tryon_bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(PG_ADMIN, autocommit=True) as c:
                c.execute(f'CREATE DATABASE "{name}"')
            try:
                url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
                res = bench(f"{url}/{name}", args.events, args.runs, f"{tmp}/lake")
            finally:
                with psycopg.connect(PG_ADMIN, autocommit=True) as c:
                    c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    b = args.backend
    rows = report_rows(res["queries"], b, args.events)
    machine = machine_info()
    md = "\n".join(
        [
            f"# Event lake + DuckDB vs {b} at {args.events:,} SYNTHETIC events",
            "",
            f"`python -m benchmarks.analytics_lake --events {args.events} --backend {b} "
            f"--runs {args.runs}`",
            "",
            markdown_table(rows),
            "",
            f"- bulk load + links: {res['load_s']:.0f} s; first export to the lake: "
            f"{res['first_export_s']:.1f} s (RSS peak {res['export_rss_peak_mb']:.0f} MB)",
            f"- lake: {res['lake_mb']:.1f} MB in {res['lake_files']} files (Parquet, LZ4)",
            f"- memory: process RSS peak during the reports {res['reports_rss_peak_mb']:.0f} MB "
            "(DuckDB memory_limit 1GB, 2 threads)",
            f"- a burst of 100k events brought up to date in {res['burst_100k_export_s']:.1f} s",
            f"- erase one shopper (SQL + lake): {res['erase_one_shopper_s']:.2f} s, "
            f"{res['erase_counts']}; files still holding the id's bytes: "
            f"{res['erased_id_bytes_left_in_lake_files']}",
            f"- erase a shopper with rows in every day's file (SYNTHETIC shopper-{N_SHOPPERS - 1}"
            f"; every file of the lake rewritten): {res['erase_resident_shopper_s']:.1f} "
            f"s, {res['erase_resident_counts']}; files still holding the id's bytes: "
            f"{res['resident_id_bytes_left_in_lake_files']}",
            "",
            f"Machine: {machine['cpu']}, {machine['cpus']} CPUs, load {machine['load_avg_1m']}; "
            f"{machine['time']}.",
        ]
    )
    print(md)
    name = "analytics_lake" if b == "postgres" else f"analytics_lake_{b}"
    if args.events != 1_000_000:  # 10M, 100M: a section of their own beside the 1M run
        name += f"_{args.events / 1e6:g}m"
    write_report(name, {"args": vars(args), "machine": machine, **res}, md)


if __name__ == "__main__":
    main()
