"""The reports on DuckDB over the event lake: every DuckDB query of the analytics in one place.

The same definitions as the SQL reports (service.analytics.queries / fitgap, the parity
reference), written once more for a columnar engine; a Spark, Trino or ClickHouse port
starts from this file. Only DuckDB's core and its built-in Parquet reader are used:
extension auto-install and auto-load are off, nothing is downloaded at run time, and no
JSON or time-zone function is called (the lake carries the JSON-derived columns).

Small tables join in from the SQL store per query, as Arrow: the canonical id of each
linked shopper (analytics_shopper_groups). The catalog's frame widths stay in Python
(fitgap.fit_gap), as on the SQL path.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from service.analytics import duck_dwell, shaping
from service.analytics.definitions import (
    CART_EVENT,
    DWELL_EVENT,
    FEEDBACK_EVENT,
    NPS_DETRACTOR_MAX,
    NPS_PROMOTER_MIN,
    ORDER_EVENT,
    SHADE_EVENT,
    TRY_ON_EVENTS,
    Filters,
)
from service.analytics.duck_engine import DuckEngine, ReportOverMemory
from service.analytics.duck_engine import sql_literal as _lit
from service.analytics.fitgap import plausible_widths
from service.analytics.lake_layout import LakeState

log = logging.getLogger(__name__)
Row = dict[str, Any]
DIM_SQL = {
    "variant": "e.variant AS variant",
    "channel": "e.channel AS channel",
    "store": "e.store_id AS store_id",
    "day": "CAST(e.timestamp AS DATE) AS day",
}


def _in(values: Sequence[str]) -> str:
    return "(" + ", ".join(_lit(v) for v in values) + ")"


def _naive(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None)


def _where(f: Filters, params: list[Any], alias: str = "e", *, product: bool = True) -> str:
    """The Filters as SQL (half-open time range, channel, store, and for product reports the
    product type), values bound as params."""
    conds = []
    if product and f.product_type:
        # The SQL path's rule (sql.filter_clause): lipstick events name a shade.
        null = "IS NOT NULL" if f.product_type == "lipstick" else "IS NULL"
        conds.append(f"{alias}.shade {null}")
    if f.start is not None:
        conds.append(f"{alias}.timestamp >= ?")
        params.append(_naive(f.start))
    if f.end is not None:
        conds.append(f"{alias}.timestamp < ?")
        params.append(_naive(f.end))
    if f.channel:
        conds.append(f"{alias}.channel = ?")
        params.append(f.channel)
    if f.store_id:
        conds.append(f"{alias}.store_id = ?")
        params.append(f.store_id)
    return " AND ".join(conds) if conds else "TRUE"


def _try_on_counts(keys: str, names: Sequence[str], scope: str, hashed: bool) -> tuple[str, int]:
    """Try-ons and unique shoppers per group (keys..., try_ons, uniq, g), and how many times
    the SQL uses the scope's parameters.

    Distinct shoppers as a GROUP BY per (group, shopper), then a count: faster than
    count(DISTINCT) and, unlike it, able to spill past the memory limit (at 100M events
    count(DISTINCT) by variant, channel and store ran out of memory). hashed: the pairs are
    keyed on one 64-bit hash of the group's values instead of the values, which join back
    from the groups' names (a second, cheap scan): by variant, channel and store (12,000
    groups; 30M pairs at 100M SYNTHETIC events) the counts took 8.9 s on the values and 5.2 s
    so, 810 -> 581 ms at 10M; on small ranges the second scan costs more than it saves
    (DuckReports.hashed_from_rows). Two groups sharing a hash (odds about 1e-11 for 12,000
    groups) come back as one g named twice (_hash_shared).
    """
    gnames = ", ".join(names)
    shopper = "coalesce(c.canonical, e.shopper_key)"
    linked = "__EVENTS__ e LEFT JOIN canon c ON c.key = e.shopper_key"
    if not hashed:
        return f"""
            SELECT {gnames}, sum(n) AS try_ons, count(shopper) AS uniq, NULL AS g
            FROM (
                SELECT {keys}, {shopper} AS shopper, count(*) AS n
                FROM {linked} WHERE {scope} GROUP BY ALL
            )
            GROUP BY ALL
        """, 1
    g = f"hash({duck_dwell.key_exprs(keys)})"
    return f"""
        WITH pairs AS (
            SELECT {g} AS g, {shopper} AS shopper, count(*) AS n
            FROM {linked} WHERE {scope} GROUP BY ALL
        ),
        counts AS (SELECT g, sum(n) AS try_ons, count(*) AS uniq FROM pairs GROUP BY g),
        named AS (SELECT DISTINCT {keys}, {g} AS g FROM __EVENTS__ e WHERE {scope})
        SELECT {gnames}, counts.try_ons, counts.uniq, counts.g
        FROM counts JOIN named USING (g)
    """, 2


def _hash_shared(rows: Sequence[tuple[Any, ...]]) -> bool:
    """Whether two product rows carry the same group hash (their last column)."""
    seen = [r[-1] for r in rows if r[-1] is not None]
    return len(seen) != len(set(seen))


class DuckReports:
    """The report functions of service.analytics.queries, on DuckDB over one lake state."""

    engine = "duckdb"
    spill_safe = False  # True: percentiles by sorted windows from the start (tests)
    # Lake rows in a report's range from which the product counts key their (group, shopper)
    # pairs on a hash of the group's values (_try_on_counts). Measured on the SYNTHETIC
    # lakes, hashed vs on the values, same process: 1M rows by variant 120 vs 98 ms, by day
    # 138 vs 116, by variant, channel and store 152 vs 154; 10M by variant 533 vs 527, by
    # variant, channel and store 816 vs 963; 100M by variant, channel and store 7.7 vs 12.4 s.
    hashed_from_rows = 5_000_000

    def __init__(self, duck: DuckEngine, session: Session, state: LakeState) -> None:
        self.duck = duck
        self.session = session
        self.state = state
        self.as_of = state.as_of_dt() or datetime.now(UTC)

    def _days(self, f: Filters, after: timedelta = timedelta(0)) -> tuple[str | None, str | None]:
        """The first and last day (ISO) of f's range, `after` past its end included."""
        first = _naive(f.start).date().isoformat() if f.start is not None else None
        last = None
        if f.end is not None:
            end = _naive(f.end) + after - timedelta(microseconds=1)
            last = end.date().isoformat()
        return first, last

    def _q(
        self, sql: str, params: Sequence[Any], f: Filters, after: timedelta = timedelta(0)
    ) -> list[tuple[Any, ...]]:
        """Run sql over the days of f's range (plus `after` past its end: the funnel's
        conversion window)."""
        return self.duck.query(self.session, self.state, sql, params, self._days(f, after))

    def _rows_in_range(self, f: Filters) -> int:
        """Lake rows in the days of f's range, from the manifest (what a report may scan)."""
        return self.state.rows(*self._days(f))

    def product_summary(self, f: Filters, group_by: Sequence[str] = ("variant",)) -> list[Row]:
        dims = shaping.check_dims(group_by)
        names = ["sku", *shaping.key_names(dims)]
        keys = ", ".join(["e.sku AS sku", *[DIM_SQL[d] for d in dims]])
        hashed = self._rows_in_range(f) >= self.hashed_from_rows
        rows = self._products(f, dims, names, keys, hashed=hashed)
        if hashed and _hash_shared(rows):
            log.warning("two product groups share a 64-bit hash; counting on their values")
            rows = self._products(f, dims, names, keys, hashed=False)
        return self._product_rows(rows, names)

    def _products(
        self, f: Filters, dims: Sequence[str], names: list[str], keys: str, *, hashed: bool
    ) -> list[tuple[Any, ...]]:
        """Rows (keys..., try_ons, uniq, dwell_n, [p50, p90], g): g is the group's hash, or
        None when hashed=False."""
        params: list[Any] = []
        where = _where(f, params)
        scope = f"e.sku IS NOT NULL AND e.event IN {_in(TRY_ON_EVENTS)} AND {where}"
        dwell = f"e.event = {_lit(DWELL_EVENT)}"
        # Two scans, each reading only its own events' row groups (the files are sorted by
        # event): the distinct count over try-ons, the dwell percentiles over dwell events.
        # One scan with FILTERed aggregates over both took twice as long at 10M events.
        tried, uses = _try_on_counts(keys, names, scope, hashed)
        on = " AND ".join(f"t.{k} IS NOT DISTINCT FROM d.{k}" for k in names)
        out = ", ".join(f"coalesce(t.{k}, d.{k})" for k in names)

        def combined(spill_safe: bool) -> str:
            return f"""
            WITH t AS ({tried}),
            d AS ({duck_dwell.dwell_percentiles(keys, names, dwell, where, spill_safe)})
            SELECT {out}, coalesce(t.try_ons, 0), coalesce(t.uniq, 0),
                coalesce(d.dwell_events, 0), d.qs, t.g
            FROM t FULL JOIN d ON {on}
        """

        grouping = tuple(dims)
        rows_in_range = self._rows_in_range(f)
        passes = self.duck.dwell_passes(grouping, rows_in_range)
        budget = self.duck.memory_bytes / 2**30 * duck_dwell.ONE_QUERY_ROWS_PER_GIB
        both = params * (uses + 1)
        if self.spill_safe:
            return self._q(combined(True), both, f)
        if passes == 1 and rows_in_range <= budget:
            try:
                return self._q(combined(False), both, f)
            except ReportOverMemory:
                log.info("dwell percentiles over the memory limit; retrying in passes")
                passes = 2
        # A large range: the counts and the percentiles as separate queries, so percentiles
        # that do not fit fail fast on their own scan (in the combined query the failure
        # came after the spilled try-on aggregation: 37 s lost at 100M events). The counts go
        # first: their groups, with the range's rows, size the percentiles' first attempt.
        tried_rows = self._q(tried, params * uses, f)
        passes = max(passes, duck_dwell.first_passes(rows_in_range, len(tried_rows),
                                                     self.duck.memory_bytes))
        d_rows, passes = duck_dwell.dwell_in_passes(
            lambda sql: self._q(sql, params, f), keys, names, dwell, where, passes
        )
        self.duck.learn_passes(grouping, passes, rows_in_range)
        return duck_dwell.full_join(tried_rows, d_rows, len(names))

    def _product_rows(self, result: list[tuple[Any, ...]], names: list[str]) -> list[Row]:
        """Rows (keys..., try_ons, uniq, dwell_n, [p50, p90], g) as the report's dicts."""
        rows = []
        n = len(names)
        for r in result:
            key = [shaping.iso_day(v) for v in r[:n]]
            try_ons, uniq, dwell_n, qs = r[n : n + 4]
            rows.append(
                {
                    **dict(zip(names, key, strict=True)),
                    "try_ons": int(try_ons),
                    "unique_shoppers": int(uniq),
                    "dwell_events": int(dwell_n),
                    "dwell_median_ms": float(qs[0]) if dwell_n else None,
                    "dwell_p90_ms": float(qs[1]) if dwell_n else None,
                }
            )
        return shaping.sort_products(rows, names)

    def funnel(self, f: Filters, window_hours: float, group_by: Sequence[str] = ()) -> list[Row]:
        dims = shaping.check_dims(group_by)
        names = ["sku", *shaping.key_names(dims)]
        window_us = round(window_hours * 3600.0 * 1e6)
        params: list[Any] = []
        where = _where(f, params)
        rng: list[str] = []
        rng_params: list[Any] = []
        if f.start is not None:
            rng.append("e.timestamp >= ?")
            rng_params.append(_naive(f.start))
        if f.end is not None:
            # the window after the end, in microseconds (the SQL path adds it in seconds)
            rng.append("epoch_us(e.timestamp) < epoch_us(?) + ?")
            rng_params += [_naive(f.end), window_us]
        in_range = " AND ".join(rng) if rng else "TRUE"
        keys = ", ".join(["e.sku AS sku", *[DIM_SQL[d] for d in dims]])
        cnames = ", ".join(f"c.{n}" for n in names)
        gnames = ", ".join(names)
        tnames = ", ".join(f"a.{n}" for n in names)
        on = " AND ".join(f"a.{n} IS NOT DISTINCT FROM b.{n}" for n in names)
        conv_events = _in((CART_EVENT, ORDER_EVENT))
        is_order = f"e.event = {_lit(ORDER_EVENT)}"
        sql = f"""
            WITH cohorts AS (
                SELECT coalesce(c.canonical, e.shopper_key) AS shopper, {keys},
                    min(e.timestamp) AS t0
                FROM __EVENTS__ e LEFT JOIN canon c ON c.key = e.shopper_key
                WHERE e.event IN {_in(TRY_ON_EVENTS)} AND e.sku IS NOT NULL AND {where}
                GROUP BY ALL
            ),
            conv AS (
                SELECT coalesce(c.canonical, e.shopper_key) AS shopper, e.sku, e.event,
                    e.timestamp,
                    CASE WHEN {is_order} THEN coalesce(e.order_amounts[1], 0) ELSE 0 END
                        AS amount,
                    e.currency
                FROM __EVENTS__ e LEFT JOIN canon c ON c.key = e.shopper_key
                WHERE e.event IN {conv_events} AND e.sku IS NOT NULL AND {in_range}
                UNION ALL
                -- two unnests in one SELECT zip the lists (order_amounts follows order_skus)
                SELECT coalesce(c.canonical, e.shopper_key) AS shopper,
                    unnest(e.order_skus) AS sku, e.event, e.timestamp,
                    unnest(e.order_amounts) AS amount, e.currency
                FROM __EVENTS__ e LEFT JOIN canon c ON c.key = e.shopper_key
                WHERE e.event = {_lit(ORDER_EVENT)} AND e.sku IS NULL
                  AND e.order_skus IS NOT NULL AND {in_range}
            ),
            -- Only cohorts that converted go through the join; the cohort counts come
            -- from the cohorts alone (a LEFT JOIN of every cohort cost a third more).
            hits AS (
                SELECT c.shopper, {cnames},
                    max(CASE WHEN v.event = {_lit(CART_EVENT)} THEN 1 ELSE 0 END) AS carted,
                    max(CASE WHEN v.event = {_lit(ORDER_EVENT)} THEN 1 ELSE 0 END) AS ordered,
                    sum(CASE WHEN v.event = {_lit(ORDER_EVENT)} THEN v.amount ELSE 0 END)
                        AS revenue,
                    min(CASE WHEN v.event = {_lit(ORDER_EVENT)} THEN v.currency END) AS cur_min,
                    max(CASE WHEN v.event = {_lit(ORDER_EVENT)} THEN v.currency END) AS cur_max,
                    sum(CASE WHEN v.event = {_lit(ORDER_EVENT)} AND v.currency IS NULL
                        THEN 1 ELSE 0 END) AS cur_none
                FROM cohorts c JOIN conv v
                  ON v.shopper = c.shopper AND v.sku = c.sku AND v.timestamp >= c.t0
                 AND epoch_us(v.timestamp) <= epoch_us(c.t0) + {int(window_us)}
                GROUP BY c.shopper, {cnames}
            ),
            tried AS (SELECT {gnames}, count(*) AS n FROM cohorts GROUP BY {gnames}),
            conv_groups AS (
                SELECT {gnames}, sum(carted) AS carted, sum(ordered) AS ordered,
                    sum(revenue) AS revenue, min(cur_min) AS cur_min, max(cur_max) AS cur_max,
                    sum(cur_none) AS cur_none
                FROM hits GROUP BY {gnames}
            )
            SELECT {tnames}, a.n, b.carted, b.ordered, coalesce(b.revenue, 0), b.cur_min,
                b.cur_max, coalesce(b.cur_none, 0)
            FROM tried a LEFT JOIN conv_groups b ON {on}
        """
        out = []
        n = len(names)
        for r in self._q(
            sql, [*params, *rng_params, *rng_params], f, timedelta(microseconds=window_us)
        ):
            out.append(
                shaping.funnel_row(
                    names,
                    [shaping.iso_day(v) for v in r[:n]],
                    int(r[n]),
                    int(r[n + 1] or 0),
                    int(r[n + 2] or 0),
                    window_hours,
                    revenue=r[n + 3],
                    currency=shaping.one_currency(r[n + 4], r[n + 5], r[n + 6]),
                )
            )
        return shaping.sort_funnel(out, names)

    def shade_popularity(self, f: Filters, by_skin_tone: bool = False) -> list[Row]:
        params: list[Any] = []
        where = _where(f, params)
        names = ["shade", *(["skin_tone_band"] if by_skin_tone else [])]
        keys = [f"e.{n} AS {n}" for n in names]
        sql = f"""
            SELECT {", ".join(names)}, sum(n), count(shopper)
            FROM (
                SELECT {", ".join(keys)}, coalesce(c.canonical, e.shopper_key) AS shopper,
                    count(*) AS n
                FROM __EVENTS__ e LEFT JOIN canon c ON c.key = e.shopper_key
                WHERE e.event = {_lit(SHADE_EVENT)} AND e.shade IS NOT NULL AND {where}
                GROUP BY ALL
            )
            GROUP BY ALL
        """
        out: list[Row] = []
        for r in self._q(sql, params, f):
            row: Row = {"shade": r[0]}
            if by_skin_tone:
                row["skin_tone_band"] = r[1]
            row["applications"] = int(r[-2])
            row["unique_shoppers"] = int(r[-1])
            out.append(row)
        return shaping.shade_shares(out)

    def nps(self, f: Filters) -> list[Row]:
        params: list[Any] = []
        where = _where(f, params, product=False)
        sql = f"""
            SELECT e.channel, count(*),
                count(*) FILTER (WHERE e.nps_score >= {NPS_PROMOTER_MIN}),
                count(*) FILTER (WHERE e.nps_score <= {NPS_DETRACTOR_MAX})
            FROM __EVENTS__ e
            WHERE e.event = {_lit(FEEDBACK_EVENT)} AND e.nps_score BETWEEN 0 AND 10 AND {where}
            GROUP BY e.channel
        """
        counts = [(r[0], int(r[1]), int(r[2]), int(r[3])) for r in self._q(sql, params, f)]
        return shaping.nps_rows(counts)

    def consented_face_widths(self, f: Filters) -> np.ndarray:
        params: list[Any] = []
        where = _where(f, params, product=False)
        sql = f"""
            SELECT avg(e.face_width_mm) FROM __EVENTS__ e
            WHERE e.face_width_mm IS NOT NULL AND {where}
            GROUP BY e.shopper_key
        """
        return plausible_widths(r[0] for r in self._q(sql, params, f))
