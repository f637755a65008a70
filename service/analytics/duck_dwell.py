"""Dwell percentiles on DuckDB: quantile_cont per group, and in passes past the memory limit.

The percentile definition is the SQL path's (service.analytics.queries): quantile_cont's
interpolation over each group's sorted dwell_ms. quantile_cont keeps every value of a group in
memory and cannot spill, so a report whose percentiles do not fit runs them in passes over
disjoint groups, and one group too large for memory by sorted windows, which spill
(service.analytics.duck decides when; the engine remembers what a grouping needed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from service.analytics.duck_engine import MAX_DWELL_PASSES, ReportOverMemory

log = logging.getLogger(__name__)
Rows = list[tuple[Any, ...]]


def dwell_percentiles(
    keys: str, names: Sequence[str], dwell: str, where: str, spill_safe: bool
) -> str:
    """Per group: dwell events and [p50, p90] of dwell_ms, as quantile_cont computes them
    (x[lo] + (pos - lo) * (x[hi] - x[lo]) at pos = (n - 1) * q over the sorted values)."""
    rows = f"""
        SELECT {keys}, e.dwell_ms FROM __EVENTS__ e
        WHERE e.sku IS NOT NULL AND {dwell} AND e.dwell_ms IS NOT NULL AND {where}
    """
    g = ", ".join(names)
    if not spill_safe:
        return f"""
            SELECT {g}, count(*) AS dwell_events,
                quantile_cont(dwell_ms, [0.5, 0.9]) AS qs
            FROM ({rows}) GROUP BY ALL
        """

    def at(q: float) -> str:
        pos = f"((n - 1) * {q})"
        lo = f"max(CASE WHEN i = floor({pos}) THEN dwell_ms END)"
        hi = f"max(CASE WHEN i = ceil({pos}) THEN dwell_ms END)"
        return f"{lo} + (any_value({pos}) - floor(any_value({pos}))) * ({hi} - {lo})"

    picks = " OR ".join(f"i IN (floor((n - 1) * {q}), ceil((n - 1) * {q}))" for q in (0.5, 0.9))
    return f"""
        SELECT {g}, any_value(n) AS dwell_events,
            [CAST({at(0.5)} AS DOUBLE), CAST({at(0.9)} AS DOUBLE)] AS qs
        FROM (
            SELECT r.*, row_number() OVER (PARTITION BY {g} ORDER BY dwell_ms) - 1 AS i,
                count(*) OVER (PARTITION BY {g}) AS n
            FROM ({rows}) r
        )
        WHERE {picks}
        GROUP BY {g}
    """


# Lake rows in a report's range per GiB of duckdb_memory_limit up to which the product report
# runs as one query (10M SYNTHETIC events: 0.4 s in 1 GB); past it the try-on counts and the
# dwell percentiles go separately, the percentiles in passes when they do not fit at once.
ONE_QUERY_ROWS_PER_GIB = 16_000_000


# Lake rows x groups (each per pass) per GiB of duckdb_memory_limit up to which one
# quantile_cont pass is tried first when nothing was learned yet: the first guess that spares
# a large report its failed attempt (at 100M SYNTHETIC events and 1 GB, by variant, channel
# and store: 12,000 groups, one pass ran out of memory after 38 s, two took 2.2 s; by variant,
# 120 groups, one pass took 1.3 s). A wrong guess is corrected by the doubling and learned.
FIRST_PASS_ROWS_X_GROUPS_PER_GIB = 6e11


def first_passes(rows: int, groups: int, memory_bytes: int) -> int:
    """Passes to start a grouping's dwell percentiles with, from the range's lake rows and
    its number of groups (the try-on counts' rows), before anything was learned."""
    budget = FIRST_PASS_ROWS_X_GROUPS_PER_GIB * memory_bytes / 2**30
    passes = 1
    while passes < MAX_DWELL_PASSES and (rows / passes) * (groups / passes) > budget:
        passes *= 2
    return passes


def full_join(
    tried: list[tuple[Any, ...]], dwell: list[tuple[Any, ...]], n: int
) -> list[tuple[Any, ...]]:
    """The combined query's FULL JOIN of the try-on rows (keys..., try_ons, uniq, g) and the
    dwell rows (keys..., dwell_n, qs) on their n group keys, done in Python for rows from
    separate queries: (keys..., try_ons, uniq, dwell_n, qs, g)."""
    by_key = {tuple(r[:n]): tuple(r[n:]) for r in dwell}
    out = []
    for r in tried:
        key = tuple(r[:n])
        try_ons, uniq, g = r[n:]
        out.append((*key, try_ons, uniq, *by_key.pop(key, (0, None)), g))
    out += [(*key, 0, 0, *d, None) for key, d in by_key.items()]
    return out


def key_exprs(keys: str) -> str:
    """The expressions of a select list of keys ("e.sku AS sku, ..." -> "e.sku, ..."), to
    hash a group by."""
    return ", ".join(k.rsplit(" AS ", 1)[0] for k in keys.split(", "))


def dwell_in_passes(
    run: Callable[[str], Rows], keys: str, names: Sequence[str], dwell: str, where: str,
    passes: int,
) -> tuple[Rows, int]:
    """Dwell percentiles per group when one quantile_cont over every group does not fit
    the memory limit: in `passes` queries (run) over disjoint groups (a hash of the group's
    keys), doubling the passes while one still runs out, and past MAX_DWELL_PASSES (a
    single group too large) by sorted windows, which spill. At 100M SYNTHETIC events by
    variant, channel and store: 2 passes, 2.4 s, where sorted windows took ~45 s.
    Returns the rows and the passes used (MAX_DWELL_PASSES * 2: sorted windows)."""
    group_keys = key_exprs(keys)
    while passes <= MAX_DWELL_PASSES:
        try:
            rows: Rows = []
            for b in range(passes):
                part = where if passes == 1 else f"{where} AND hash({group_keys}) % {passes} = {b}"
                rows += run(dwell_percentiles(keys, names, dwell, part, False))
            return rows, passes
        except ReportOverMemory:
            log.info("dwell percentiles over the memory limit in %d passes", passes)
            passes *= 2
    return run(dwell_percentiles(keys, names, dwell, where, True)), MAX_DWELL_PASSES * 2
