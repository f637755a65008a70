"""The event lake and DuckDB: every report equals the SQL store's, on SQLite and PostgreSQL;
export is incremental and idempotent; erasure and retention reach the Parquet files."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from service.analytics import duck as duck_module
from service.analytics import queries, shaping
from service.analytics.definitions import Filters
from service.analytics.duck import DuckReports
from service.analytics.duck_engine import DuckEngine
from service.analytics.fitgap import Frame, consented_face_widths, fit_gap
from service.analytics.lake import EventLake
from service.analytics.lake_layout import LAYOUT
from service.handoff.service import claim, mint
from service.settings import Settings
from service.shoppers.erasure import erase_shopper
from service.shoppers.retention import purge_older_than
from service.touchpoints.models import Event
from service.wiring import erasers, purgers
from tests.service.analytics.support import (
    T0,
    ev,
    fixture_events,
    identity_events,
    migrated,
    store,
)

H = timedelta(hours=1)
DAY0 = datetime(2026, 5, 1, tzinfo=UTC)
KINDS = (
    "Frame Applied",
    "Shade Applied",
    "Try-On Dwell",
    "Product Added",
    "Order Completed",
    "Feedback Submitted",
    "Try-On Started",
)
BAND_PROPS = [
    {},
    {"skin_tone_band": "MST 4-7"},
    {"skin_tone_band": 5},
    {"skin_tone_band": "x" * 65, "monk_index": 9, "consent": True},
    {"monk_index": 2, "consent": True},
    {"monk_index": 3.5, "consent": True},
    {"monk_index": 10.7, "consent": True},
    {"monk_index": "4", "consent": True},
    {"monk_index": True, "consent": True},
]
SECRET = "erase-me-7f3a9c1d"  # a distinctive shopper id: no byte of it may stay in the lake
SECRET_USER = "user-5b8e20aa41"


def synthetic_events(n: int, seed: int) -> list[dict]:
    """SYNTHETIC: try-ons, dwells, shades, carts, (multi-line) orders, NPS and face widths
    over 8 days, 3 channels, 3 stores, 150 shoppers."""
    rng = np.random.default_rng(seed)
    # Prices, quantities and currencies from a stream of their own (the other draws stay).
    cash = np.random.default_rng(seed + 1)
    out = []
    for _ in range(n):
        at = DAY0 + timedelta(seconds=int(rng.integers(8 * 86400)))
        kind = KINDS[int(rng.integers(len(KINDS)))]
        props: dict = {}
        if kind != "Shade Applied" or rng.random() < 0.3:
            props["sku"] = f"SKU-{int(rng.integers(6))}"
        if kind == "Order Completed":
            props["order_id"] = f"o{int(rng.integers(1_000_000))}"
        if kind == "Order Completed" and rng.random() < 0.4:
            del props["sku"]
            props["products"] = [{"sku": f"SKU-{int(rng.integers(6))}"} for _ in range(2)]
            if cash.random() < 0.2:  # one line: ingest moves its sku to the sku column
                props["products"] = props["products"][:1]
            for line in props["products"]:
                if cash.random() < 0.8:
                    line["price"] = round(float(cash.uniform(5, 300)), 2)
                if cash.random() < 0.5:
                    line["quantity"] = int(cash.integers(1, 4))
        if kind == "Order Completed":
            if "sku" in props and cash.random() < 0.8:
                props["price"] = round(float(cash.uniform(5, 300)), 2)
            if cash.random() < 0.95:
                props["currency"] = "EUR" if cash.random() < 0.9 else "USD"
        if rng.random() < 0.6 and "sku" in props:
            props["variant"] = ("black", "gold")[int(rng.integers(2))]
        if kind == "Shade Applied":
            props["shade"] = f"shade-{int(rng.integers(4))}"
            props.update(BAND_PROPS[int(rng.integers(len(BAND_PROPS)))])
        if kind == "Try-On Dwell":
            props["dwell_ms"] = int(rng.integers(100, 90_000))
        if kind == "Feedback Submitted":
            props["nps"] = int(rng.integers(0, 11))
        if kind == "Try-On Started":
            props.update(face_width_mm=float(rng.normal(140, 8)), consent=True)
        if rng.random() < 0.7:
            props["store_id"] = f"S{int(rng.integers(3))}"
        channel = ("web", "kiosk", "app")[int(rng.integers(3))]
        out.append(ev(kind, f"r{int(rng.integers(150))}", at, channel, **props))
    return out


@pytest.fixture(scope="module")
def env(db_url, tmp_path_factory):
    """The fixtures and ~1,200 SYNTHETIC events, exported in three increments (the second
    with a late event for an old day), plus the linked-identity case."""
    with migrated(db_url) as factory:
        lake_dir = tmp_path_factory.mktemp("lake")
        lake = EventLake(str(lake_dir), export_chunk_rows=250, compact_min_files=4)
        engine = factory.kw["bind"]
        synthetic = synthetic_events(1200, seed=11)
        for i in range(0, 600, 200):
            store(factory, synthetic[i : i + 200])
        lake.export(engine)
        store(factory, fixture_events())
        store(factory, [ev("Frame Applied", "late", DAY0 - 20 * 24 * H, "web", sku="SKU-1")])
        store(factory, identity_events()[:2])
        with factory.begin() as s:
            claim(s, mint(s, "k1", ttl_s=600).token, "p1")
        lake.export(engine)
        store(factory, identity_events()[2:])
        for i in range(600, 1200, 200):
            store(factory, synthetic[i : i + 200])
        lake.export(engine)
        duck = DuckEngine(lake, memory_limit="256MB", threads=1)
        settings = Settings(database_url=db_url, lake_dir=str(lake_dir))
        yield factory, lake, duck, engine, settings
        duck.close()


def duck_reports(env) -> tuple:
    factory, lake, duck, engine, _ = env
    session = factory()
    return session, DuckReports(duck, session, lake.ensure_fresh(engine, 3600))


def same(a, b, path="") -> None:
    """Equal rows; floats to 1e-9 relative (percentiles come from different code)."""
    if isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9), (path, a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), (path, a.keys(), b.keys())
        for k in a:
            same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), (path, len(a), len(b), a, b)
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{path}[{i}]")
    else:
        assert a == b, (path, a, b)


FILTERS = [
    Filters(),
    Filters(start=DAY0 + 2 * 24 * H, end=DAY0 + 5 * 24 * H),
    Filters(start=DAY0 + 9 * H, end=DAY0 + 6 * 24 * H + 17 * H),  # ragged edges
    Filters(channel="kiosk"),
    Filters(store_id="S1", start=DAY0),
    Filters(end=DAY0 + 3 * 24 * H),
    Filters(product_type="glasses"),
    Filters(product_type="lipstick", channel="web"),
]
GROUPINGS = [(), ("variant",), ("channel",), ("store",), ("day",), ("variant", "store", "day")]


@pytest.mark.parametrize("f", FILTERS)
@pytest.mark.parametrize("group_by", GROUPINGS)
@pytest.mark.parametrize("hashed", [False, True])
def test_products_parity(env, f, group_by, hashed) -> None:
    """The SQL store's numbers, with the (group, shopper) pairs keyed on the group's values
    (small ranges) or on their hash (large ranges: DuckReports.hashed_from_rows)."""
    session, dr = duck_reports(env)
    dr.hashed_from_rows = 0 if hashed else 10**12
    with session:
        ref = queries.product_summary(session, f, group_by)
        assert ref
        same(dr.product_summary(f, group_by), ref)


@pytest.mark.parametrize("f", FILTERS[:4])
@pytest.mark.parametrize("group_by", [("variant",), ("variant", "store", "day")])
def test_products_parity_spill_safe_percentiles(env, f, group_by) -> None:
    """The percentiles taken when quantile_cont runs out of memory (sorted windows) give the
    SQL store's numbers too."""
    session, dr = duck_reports(env)
    dr.spill_safe = True
    with session:
        same(dr.product_summary(f, group_by), queries.product_summary(session, f, group_by))


@pytest.mark.parametrize("f", FILTERS[:4])
@pytest.mark.parametrize("group_by", [(), ("variant",), ("variant", "store", "day")])
@pytest.mark.parametrize("passes", [2, 4, 32])
@pytest.mark.parametrize("hashed", [False, True])
def test_products_parity_dwell_in_passes(env, f, group_by, passes, hashed) -> None:
    """Past the memory limit the dwell percentiles run in passes over disjoint groups (32:
    sorted windows), joined to the try-on counts in Python: the SQL store's numbers still,
    groups with only try-ons or only dwell events included."""
    session, dr = duck_reports(env)
    dr.hashed_from_rows = 0 if hashed else 10**12
    dr.duck.learn_passes(tuple(group_by), passes, dr._rows_in_range(f))
    try:
        with session:
            got = dr.product_summary(f, group_by)
            same(got, queries.product_summary(session, f, group_by))
    finally:
        dr.duck.forget_passes(tuple(group_by))  # the engine and lake serve the module
    assert any(r["dwell_events"] == 0 for r in got) or not got  # try-on-only groups kept


@pytest.mark.parametrize("f", FILTERS[:3])
@pytest.mark.parametrize("group_by", [("variant",), ("variant", "store", "day")])
@pytest.mark.parametrize("passes", [1, 2])
def test_products_on_group_values_when_two_groups_share_a_hash(
    env, f, group_by, passes, monkeypatch, caplog
) -> None:
    """The try-on counts are keyed on a hash of each group's values; should two groups ever
    share one, the report is counted again on the values themselves: the SQL store's numbers
    either way (the collision is forced here; its odds are about 1e-11)."""
    session, dr = duck_reports(env)
    dr.hashed_from_rows = 0
    calls: list[bool] = []
    real = duck_module._hash_shared

    def shared_once(rows):
        calls.append(real(rows))
        return len(calls) == 1

    monkeypatch.setattr(duck_module, "_hash_shared", shared_once)
    if passes > 1:
        dr.duck.learn_passes(tuple(group_by), passes, dr._rows_in_range(f))
    try:
        with session, caplog.at_level(logging.WARNING, "service.analytics.duck"):
            same(dr.product_summary(f, group_by), queries.product_summary(session, f, group_by))
    finally:
        dr.duck.forget_passes(tuple(group_by))
    assert calls == [False]  # no real collision: forced once, then counted on the values
    assert "share a 64-bit hash" in caplog.text


def test_hash_shared_sees_one_hash_named_twice() -> None:
    assert duck_module._hash_shared([("a", 1, 7), ("b", 2, 7)])
    assert not duck_module._hash_shared([("a", 1, 7), ("b", 2, 8), ("c", 0, None), ("d", 0, None)])


@pytest.mark.parametrize(
    ("group_by", "first_budget", "first"),
    [
        (("variant",), None, [1]),
        (("variant", "store", "day"), None, [1]),
        # many groups over many rows, nothing learned yet: passes from the first attempt
        (("variant", "store", "day"), 1.0, [16]),
    ],
)
def test_large_range_runs_counts_and_percentiles_apart(
    env, monkeypatch, group_by, first_budget, first
) -> None:
    """Past the one-query budget (lake rows per GiB of the memory limit) the try-on counts and
    the dwell percentiles run as separate queries, the percentiles in as many passes as the
    range's rows times the count's groups call for (one on these fixtures; a failure then
    costs only their own scan), with the SQL store's numbers."""
    from service.analytics import duck_dwell

    session, dr = duck_reports(env)
    f = Filters()
    monkeypatch.setattr(duck_dwell, "ONE_QUERY_ROWS_PER_GIB", 1.0)
    if first_budget is not None:
        monkeypatch.setattr(duck_dwell, "FIRST_PASS_ROWS_X_GROUPS_PER_GIB", first_budget)
    asked: list[int] = []
    real = duck_dwell.dwell_in_passes

    def spy(*args, **kw):
        asked.append(args[5])
        return real(*args, **kw)

    monkeypatch.setattr(duck_dwell, "dwell_in_passes", spy)
    try:
        with session:
            same(dr.product_summary(f, group_by), queries.product_summary(session, f, group_by))
    finally:
        dr.duck.forget_passes(tuple(group_by))
    assert asked == first


def test_first_passes_grow_with_rows_times_groups() -> None:
    from service.analytics.duck_dwell import MAX_DWELL_PASSES, first_passes

    gib = 2**30
    # the 100M SYNTHETIC calibration: 120 groups fit one pass, 12,000 start with two
    assert first_passes(10**8, 120, gib) == 1
    assert first_passes(10**8, 12_000, gib) == 2
    assert first_passes(10**8, 12_000, 4 * gib) == 1  # more memory, fewer passes
    assert first_passes(10**9, 12_000, gib) == 8
    assert first_passes(10**12, 10**6, gib) == MAX_DWELL_PASSES  # then the doubling decides
    assert first_passes(0, 0, gib) == 1


def test_memory_limit_read_back_in_bytes(env) -> None:
    from service.analytics.duck_engine import _setting_bytes

    assert _setting_bytes("953.6 MiB") == int(953.6 * 2**20)
    assert _setting_bytes("2.0 GiB") == 2 * 2**30
    assert _setting_bytes("garbage") == 10**9
    engine = DuckEngine(env[1], memory_limit="512MB", threads=1)
    try:
        assert abs(engine.memory_bytes - 512 * 10**6) < 2**20
    finally:
        engine.close()


def test_dwell_passes_scale_with_the_rows_and_reset_for_small_ranges(env) -> None:
    _, lake, _, _, _ = env
    duck = DuckEngine(lake, memory_limit="64MB", threads=1)
    try:
        g = ("variant", "channel", "store")
        assert duck.dwell_passes(g, 10**8) == 1  # nothing learned: one query
        duck.learn_passes(g, 2, 10**8)
        assert duck.dwell_passes(g, 10**8) == 2
        assert duck.dwell_passes(g, 3 * 10**8) == 8  # 6 -> the next power of two
        assert duck.dwell_passes(g, 10**9) == 32  # past 16 passes: sorted windows
        assert duck.dwell_passes(g, 4 * 10**7) == 1  # under half the rows: try one query
        assert duck.dwell_passes(("variant",), 10**8) == 1  # per grouping
        duck.learn_passes(g, 32, 10**8)  # sorted windows were needed
        assert duck.dwell_passes(g, 10**8) == 32
        # Another process on the same lake starts from it (the lake's report hints), scaled
        # by its own memory limit: four times the memory, a quarter of the passes.
        duck.learn_passes(g, 8, 10**8)
        other = DuckEngine(lake, memory_limit="256MB", threads=1)
        try:
            assert other.dwell_passes(g, 10**8) == 2
            other.forget_passes(g)
        finally:
            other.close()
        third = DuckEngine(lake, memory_limit="64MB", threads=1)
        try:
            assert third.dwell_passes(g, 10**8) == 1  # forgotten for everyone after
        finally:
            third.close()
    finally:
        duck.forget_passes(g)
        duck.close()
    assert "variant,channel,store" not in lake.read_hints().get("dwell_passes", {})


def test_report_over_memory_limit_retries_then_answers_503(env, tmp_path) -> None:
    """A DuckDB engine with too little memory: the product report falls back to the
    spilling percentiles; a report that still does not fit raises a 503 ServiceError."""
    from service.analytics.duck_engine import ReportOverMemory

    factory, lake, _, engine, _ = env
    tiny = DuckEngine(lake, memory_limit="1MB", threads=1)
    try:
        session = factory()
        with session:
            dr = DuckReports(tiny, session, lake.ensure_fresh(engine, 3600))
            try:
                rows = dr.product_summary(Filters(), ("variant", "store", "day"))
            except ReportOverMemory as exc:
                assert exc.status_code == 503 and "memory" in exc.message
            else:
                same(rows, queries.product_summary(session, Filters(), ("variant", "store", "day")))
    finally:
        tiny.close()


def test_spill_folder_of_a_killed_process_is_removed_by_the_next(env, tmp_path) -> None:
    """SIGKILL runs no finalizer: the next engine on the machine removes the dead process's
    spill folder (pid gone, untouched for ORPHAN_AGE_S), never a live process's or a fresh one."""
    import os
    import shutil
    import signal
    import subprocess
    import sys
    import tempfile

    from service.analytics import duck_engine

    root = tempfile.gettempdir()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = tempfile.mkdtemp(prefix=f"{duck_engine.SPILL_PREFIX}{child.pid}-", dir=root)
    Path(dead, "spill.tmp").write_bytes(b"x" * 1024)
    live = tempfile.mkdtemp(prefix=f"{duck_engine.SPILL_PREFIX}{os.getpid()}-", dir=root)
    fresh_child = subprocess.Popen([sys.executable, "-c", "pass"])
    fresh_child.wait()
    fresh = tempfile.mkdtemp(prefix=f"{duck_engine.SPILL_PREFIX}{fresh_child.pid}-", dir=root)
    try:
        old = os.stat(dead).st_mtime - duck_engine.ORPHAN_AGE_S - 1
        for path in (dead, live):
            os.utime(path, (old, old))
        assert dead not in duck_engine.remove_orphaned_spill_folders(root)  # still running
        child.send_signal(signal.SIGKILL)
        child.wait()
        engine = DuckEngine(env[1], memory_limit="64MB", threads=1)  # cleans up as it starts
        try:
            assert not os.path.exists(dead)
            assert os.path.isdir(live) and os.path.isdir(fresh)  # alive / recently touched
            assert os.path.isdir(engine._spill)
            assert os.path.basename(engine._spill).startswith(
                f"{duck_engine.SPILL_PREFIX}{os.getpid()}-")
        finally:
            engine.close()
    finally:
        for path in (dead, live, fresh):
            shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("f", FILTERS)
@pytest.mark.parametrize("window_hours", [72.0, 1.5, 24.0 * 30])
@pytest.mark.parametrize("group_by", [(), ("channel",), ("variant", "day")])
def test_funnel_parity(env, f, window_hours, group_by) -> None:
    session, dr = duck_reports(env)
    with session:
        ref = queries.funnel(session, f, window_hours, group_by)
        assert ref
        got = dr.funnel(f, window_hours, group_by)
        same(got, ref)
        assert shaping.funnel_totals(got) == shaping.funnel_totals(ref)


@pytest.mark.parametrize("f", FILTERS)
def test_funnel_revenue_parity(env, f) -> None:
    """Revenue and its currency on both engines: priced, unpriced, multi-line, one-line and
    multi-quantity orders, mixed and missing currencies (SYNTHETIC)."""
    session, dr = duck_reports(env)
    with session:
        ref = queries.funnel(session, f, 72.0, ("channel",))
        got = dr.funnel(f, 72.0, ("channel",))
    key = ("sku", "channel")
    assert {tuple(r[k] for k in key): (r["revenue"], r["currency"]) for r in got} == {
        tuple(r[k] for k in key): (r["revenue"], r["currency"]) for r in ref
    }
    assert shaping.funnel_totals(got) == shaping.funnel_totals(ref)
    if f.product_type != "lipstick":
        assert sum(r["revenue"] for r in ref) > 0


@pytest.mark.parametrize("f", FILTERS)
@pytest.mark.parametrize("by_skin_tone", [False, True])
def test_shades_parity(env, f, by_skin_tone) -> None:
    session, dr = duck_reports(env)
    with session:
        ref = queries.shade_popularity(session, f, by_skin_tone)
        assert ref or f.product_type == "glasses"  # glasses events name no shade
        same(dr.shade_popularity(f, by_skin_tone), ref)


@pytest.mark.parametrize("f", FILTERS)
def test_nps_parity(env, f) -> None:
    session, dr = duck_reports(env)
    with session:
        ref = queries.nps(session, f)
        assert ref
        same(dr.nps(f), ref)


@pytest.mark.parametrize("f", FILTERS)
def test_fit_gap_parity(env, f) -> None:
    frames = [Frame("N-1", 128.0), Frame("M-1", 136.0), Frame("W-1", 150.0)]
    session, dr = duck_reports(env)
    with session:
        ref = consented_face_widths(session, f)
        got = dr.consented_face_widths(f)
    assert ref.size
    np.testing.assert_allclose(np.sort(got), np.sort(ref), rtol=1e-12)
    same(fit_gap(np.sort(got), frames), fit_gap(np.sort(ref), frames))


def test_hand_computed_numbers_through_duckdb(env) -> None:
    """The fixtures' numbers (test_reports, test_rollups) on DuckDB: RB-1/black 3 try-ons by 2
    shoppers, dwell median 25 s and p90 37 s; RB-7 funnel 2/1/1 across linked ids; NPS 2
    promoters and 3 detractors of 6."""
    session, dr = duck_reports(env)
    day = Filters(start=T0 - H, end=T0 + 30 * 24 * H)
    with session:
        rows = {(r["sku"], r["variant"]): r for r in dr.product_summary(day, ("variant",))}
        black = rows[("RB-1", "black")]
        assert (black["try_ons"], black["unique_shoppers"], black["dwell_events"]) == (3, 2, 4)
        assert (black["dwell_median_ms"], black["dwell_p90_ms"]) == (25_000, 37_000)
        rb7 = {r["sku"]: r for r in dr.funnel(Filters(), 72.0, ())}["RB-7"]
        assert (rb7["tried"], rb7["carted"], rb7["ordered"]) == (2, 1, 1)
        nps_all = dr.nps(Filters(start=T0, end=T0 + H))[-1]
        assert (nps_all["channel"], nps_all["responses"], nps_all["nps"]) == (
            "all",
            6,
            pytest.approx(-100 / 6),
        )


def test_export_is_incremental_and_idempotent(env) -> None:
    factory, lake, _, engine, _ = env
    assert lake.export(engine).rows == 0  # nothing new: nothing written
    state = lake.read_state()
    ids = np.concatenate(
        [pq.read_table(p, columns=["id"])["id"].to_numpy() for p in lake.live_files()]
    )
    with factory() as s:
        n_sql = s.scalar(select(func.count()).select_from(Event))
    assert len(ids) == len(set(ids.tolist())) == n_sql == state.rows()
    # The late event (an old timestamp, a new id) sits in its own day's partition.
    late_day = (DAY0 - 20 * 24 * H).date().isoformat()
    assert late_day in state.files
    # Re-exporting days replaces them: no duplicate, the same count.
    lake.rebuild(engine, [DAY0.date(), (DAY0 - 20 * 24 * H).date()])
    assert lake.read_state().rows() == n_sql
    # Compaction leaves one file per day, the same rows, and no stray file on disk.
    lake.compact(engine)
    after = lake.read_state()
    assert all(len(fs) == 1 for fs in after.files.values()) and after.rows() == n_sql
    on_disk = {Path(p) for p in lake.disk_files() if "/events/" in p}
    assert on_disk == {Path(p) for p in lake.live_files()}


def test_freshness_brings_the_lake_up_to_date(env) -> None:
    factory, lake, duck, engine, _ = env
    before = lake.read_state()
    store(factory, [ev("Frame Applied", "fresh-1", DAY0 + H, "web", sku="SKU-FRESH")])
    # Within the staleness bound the lake is not re-read: the new try-on is not there yet.
    assert lake.ensure_fresh(engine, 3600).watermark == before.watermark
    state = lake.ensure_fresh(engine, 0)
    assert state.watermark > before.watermark and state.as_of > before.as_of
    with factory() as s:
        rows = DuckReports(duck, s, state).product_summary(Filters(), ())
    assert {r["sku"]: r["try_ons"] for r in rows}["SKU-FRESH"] == 1


def _lake_bytes(lake: EventLake) -> bytes:
    return b"".join(Path(p).read_bytes() for p in lake.disk_files())


def test_erasure_leaves_no_byte_of_the_shopper(env) -> None:
    factory, lake, _, engine, settings = env
    store(
        factory,
        [
            ev("Frame Applied", SECRET, DAY0 + 30 * H, "kiosk", sku="SKU-2", store_id="S1"),
            ev("Try-On Dwell", SECRET, DAY0 + 30 * H, "kiosk", sku="SKU-2", dwell_ms=4000),
            ev("Shade Applied", SECRET, DAY0 + 50 * H, "web", shade="shade-1"),
            # identify: SECRET is also SECRET_USER (a linked id, erased together)
            ev("Product Added", SECRET, DAY0 + 51 * H, "web", sku="SKU-2", user_id=SECRET_USER),
            ev("Try-On Started", SECRET, DAY0 + 52 * H, "web", face_width_mm=133.0, consent=True),
        ],
    )
    lake.export(engine)
    assert SECRET.encode() in _lake_bytes(lake) and SECRET_USER.encode() in _lake_bytes(lake)
    with factory.begin() as s:
        counts = erase_shopper(s, SECRET, erasers(settings))
    assert counts["lake_rows"] == 5
    data = _lake_bytes(lake)
    assert SECRET.encode() not in data and SECRET_USER.encode() not in data
    # The rest of the lake still answers like the SQL store.
    session, dr = duck_reports(env)
    with session:
        same(
            dr.product_summary(Filters(), ("store",)),
            queries.product_summary(session, Filters(), ("store",)),
        )
    # A new export does not bring the erased rows back.
    lake.export(engine)
    assert SECRET.encode() not in _lake_bytes(lake)


def test_retention_drops_old_partitions(env) -> None:
    """Runs last (it empties the lake of every test event, all older than 30 days)."""
    factory, lake, _, _, settings = env
    assert lake.read_state().files
    with factory.begin() as s:
        counts = purge_older_than(s, 30, purgers(settings))
    assert counts["lake_rows"] > 0 and counts["events"] == counts["lake_rows"]
    assert lake.read_state().files == {}
    assert not [p for p in lake.disk_files() if p.endswith(".parquet")]


def test_older_layout_is_reexported(env, tmp_path) -> None:
    """A lake written before `order_amounts` (layout 0) is re-exported from SQL, every day,
    before a report reads it: no file of the older layout is left to read revenue from."""
    _, _, _, engine, _ = env
    lake = EventLake(str(tmp_path / "old"))
    lake.export(engine)
    state = lake.read_state()
    assert state.layout == LAYOUT
    before = {d: [f["name"] for f in fs] for d, fs in state.files.items()}
    state.layout = 0
    lake._write_state(state)
    fresh = lake.ensure_fresh(engine, 3600)
    assert fresh.layout == LAYOUT and not fresh.dirty_days
    assert fresh.files.keys() == before.keys()
    assert all(not {f["name"] for f in fresh.files[d]} & set(names) for d, names in before.items())
    assert fresh.rows() == state.rows()


def test_shopper_key_column_and_sort(env) -> None:
    """Every row's shopper_key is the documented SHA-256 key of its shopper_id (what a second
    engine recomputes for the identity links), and each file is sorted for row-group skipping."""
    import hashlib

    from service.analytics.lake_layout import SORT_COLUMNS, shopper_key

    _, lake, _, _, _ = env
    assert shopper_key("shopper-1") == int.from_bytes(
        hashlib.sha256(b"shopper-1").digest()[:8], "big", signed=True
    )
    for path in lake.live_files():
        t = pq.read_table(path)
        ids, keys = t["shopper_id"].to_pylist(), t["shopper_key"].to_pylist()
        assert keys == [None if i is None else shopper_key(i) for i in ids]
        rows = t.select(list(SORT_COLUMNS)).to_pylist()
        order = [tuple((r[c] is None, r[c]) for c in SORT_COLUMNS) for r in rows]  # nulls last
        assert order == sorted(order), path
