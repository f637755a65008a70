"""Touchpoint ingestion throughput (SYNTHETIC events, batches of 500) on SQLite and PostgreSQL.

Three paths per database, measured in the same run:
  raw_insert  baseline: one Core executemany of prepared rows (no validation, no dedupe);
  service     ingest() (validation + ON CONFLICT DO NOTHING) in one transaction per batch;
  http        POST /v1/events to the real app on uvicorn over loopback (auth, JSON, ingest);
  replay      the same batches again through ingest(): all duplicates;
  service_no_rollups  ingest() with the daily-rollup upsert switched off (its cost, same run).
Run: `python -m benchmarks.ingest [--batches N] [--pg URL|--no-pg]`. Every event is made up.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np

from benchmarks.common import write_report
from service.analytics.rollups import apply_inserted
from service.db.dml import table_of
from service.db.engine import make_engine, make_sessionmaker
from service.db.migrate import upgrade
from service.touchpoints.models import Event
from service.touchpoints.service import _prepare, ingest
from service.wiring import ingest_hooks

BATCH = 500
PG_ADMIN_URL = os.environ.get("TRYON_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
EVENTS = ("Try-On Started", "Frame Applied", "Try-On Dwell", "Shade Applied", "Product Added")


def synthetic_batch(rng: np.random.Generator, n: int = BATCH) -> list[dict[str, Any]]:
    """SYNTHETIC: a kiosk-like mix of try-on events for a few hundred made-up shoppers."""
    now = datetime.now(UTC)
    out = []
    for _ in range(n):
        name = EVENTS[int(rng.integers(len(EVENTS)))]
        props: dict[str, Any] = {"sku": f"SYN-{int(rng.integers(48)):03d}", "synthetic": True}
        if name == "Try-On Dwell":
            props["dwell_ms"] = int(rng.integers(500, 60_000))
        if name == "Shade Applied":
            props["shade"] = f"shade-{int(rng.integers(12))}"
        if name == "Product Added":
            props.update(price="129.00", currency="EUR")
        out.append(
            {
                "message_id": uuid.uuid4().hex,
                "event": name,
                "anonymous_id": f"syn-{int(rng.integers(500))}",
                "channel": "kiosk",
                "store_id": "syn-store",
                "timestamp": (now - timedelta(seconds=float(rng.integers(86_400)))).isoformat(),
                "properties": props,
            }
        )
    return out


def stats(seconds: list[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1000
    return {
        "batches": len(seconds),
        "events_per_s": round(BATCH * len(seconds) / sum(seconds)),
        # from the median batch: robust to bursts from other processes on a shared box
        "events_per_s_p50": round(BATCH / float(np.percentile(seconds, 50))),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
    }


def bench_service(url: str, batches: list[list[dict]]) -> dict[str, dict[str, float]]:
    engine = make_engine(url)
    upgrade(engine)
    factory = make_sessionmaker(engine)
    now = datetime.now(UTC)
    # The app's after-insert hooks (service.wiring), as the HTTP path runs them; the path
    # without rollups drops only the daily-rollup upsert.
    hooks = ingest_hooks()
    no_rollup_hooks = tuple(h for h in hooks if h is not apply_inserted)
    warm = synthetic_batch(np.random.default_rng(99))
    with factory.begin() as s:  # warm-up: connection, statement cache
        ingest(s, warm, source="bench", hooks=hooks)

    raw: list[float] = []
    svc: list[float] = []
    replay: list[float] = []
    no_roll: list[float] = []
    # Other message ids for the path without rollups (all must be new rows).
    plain = [synthetic_batch(np.random.default_rng(3000 + i)) for i in range(len(batches))]
    # baseline rows are prepared (validated) outside the timer: it times the INSERT alone
    raw_rows = [
        [
            _prepare(e, source="bench", now=now, max_future=timedelta(minutes=5))[0]
            for e in synthetic_batch(np.random.default_rng(1000 + i))
        ]
        for i in range(len(batches))
    ]
    # Interleaved per batch, so every path sees the same table size and the same neighbours
    # on a shared machine; replay re-sends the batch just stored (all duplicates).
    for rows, b in zip(raw_rows, batches, strict=True):
        t0 = time.perf_counter()
        with factory.begin() as s:
            s.execute(table_of(Event).insert(), rows)
        raw.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        with factory.begin() as s:
            r = ingest(s, b, source="bench", hooks=hooks)
        svc.append(time.perf_counter() - t0)
        assert r.inserted == BATCH, r.to_dict()["results"][:3]
        t0 = time.perf_counter()
        with factory.begin() as s:
            r = ingest(s, b, source="bench", hooks=hooks)
        replay.append(time.perf_counter() - t0)
        assert r.duplicates == BATCH
        t0 = time.perf_counter()
        with factory.begin() as s:
            r = ingest(s, plain[len(no_roll)], source="bench", hooks=no_rollup_hooks)
        no_roll.append(time.perf_counter() - t0)
        assert r.inserted == BATCH
    engine.dispose()
    return {
        "raw_insert": stats(raw),
        "service": stats(svc),
        "service_no_rollups": stats(no_roll),
        "replay": stats(replay),
    }


def bench_http(url: str, batches: list[list[dict]]) -> dict[str, float]:
    import uvicorn

    from service.access.keys import create_key
    from service.app import create_app
    from service.settings import Settings

    app = create_app(Settings(database_url=url, demo_api_key="", retention_on_startup=False))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    with app.state.runtime.sessions.begin() as s:
        _, key = create_key(s, "bench", ["kiosk"], rate_limit_per_minute=0)
    times = []
    with httpx.Client(
        base_url=f"http://127.0.0.1:{port}", timeout=60, headers={"Authorization": f"Bearer {key}"}
    ) as client:
        client.post("/v1/events", json={"events": synthetic_batch(np.random.default_rng(98))})
        for b in batches:
            t0 = time.perf_counter()
            r = client.post("/v1/events", json={"events": b})
            times.append(time.perf_counter() - t0)
            assert r.status_code == 200 and r.json()["inserted"] == BATCH, r.text[:300]
    server.should_exit = True
    thread.join(timeout=10)
    return stats(times)


def make_pg_database(admin_url: str) -> tuple[str, str] | None:
    try:
        import psycopg

        name = f"tryon_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # no server: benchmark SQLite only
        print(f"PostgreSQL unavailable ({exc}); skipping it")
        return None
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    return f"{base}/{name}", name


def drop_pg_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--pg", default=PG_ADMIN_URL, help="admin URL for a scratch database")
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args()

    results: dict[str, Any] = {
        "synthetic": True,
        "batch_size": BATCH,
        "batches": args.batches,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            # the box is shared: a high load average means slower, noisier numbers
            "load_avg_1m_start": round(os.getloadavg()[0], 2),
        },
        "databases": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        targets = {"sqlite": (f"sqlite:///{tmp}/bench.sqlite", f"sqlite:///{tmp}/http.sqlite")}
        made = []
        if not args.no_pg:
            for _ in range(2):
                pg = make_pg_database(args.pg)
                if pg:
                    made.append(pg)
            if len(made) == 2:
                targets["postgresql"] = (made[0][0], made[1][0])
        try:
            for db, (url, http_url) in targets.items():
                rng = np.random.default_rng(7)
                batches = [synthetic_batch(rng) for _ in range(args.batches)]
                res = bench_service(url, batches)
                res["http"] = bench_http(http_url, batches)
                base = res["raw_insert"]["events_per_s_p50"]
                for row in res.values():
                    row["vs_raw_insert"] = round(row["events_per_s_p50"] / base, 3)
                results["databases"][db] = res
                print(db, json.dumps(res))
        finally:
            for _, name in made:
                drop_pg_database(args.pg, name)

    results["machine"]["load_avg_1m_end"] = round(os.getloadavg()[0], 2)
    lines = [
        "# Touchpoint ingestion (SYNTHETIC events, batches of 500)",
        "",
        f"{args.batches} batches per path; {results['machine']['cpus']} CPUs (shared; load "
        f"average {results['machine']['load_avg_1m_start']} -> "
        f"{results['machine']['load_avg_1m_end']}); HTTP = real uvicorn on loopback, client "
        "in the same process. Compare the ratios: all paths ran in the same run.",
        "",
        "| database | path | events/s (mean) | events/s (median batch) | batch p50 ms "
        "| batch p95 ms | vs raw insert (median) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for db, res in results["databases"].items():
        for path, row in res.items():
            lines.append(
                f"| {db} | {path} | {row['events_per_s']:,} | {row['events_per_s_p50']:,} | "
                f"{row['p50_ms']} | {row['p95_ms']} | {row['vs_raw_insert']}x |"
            )
    table = "\n".join(lines) + "\n"
    write_report("ingest", results, table)
    print(table)


if __name__ == "__main__":
    main()
