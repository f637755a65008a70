"""SYNTHETIC events written straight into an event lake (no SQL store), for the 100M run.

At 100M events the benchmark's Python generator and a PostgreSQL bulk load would take hours
on 2 cores, so this writes the same SYNTHETIC shape as `analytics_lake.synthetic` (event mix,
Zipf-ish skus, 50k shoppers, 5 channels, 20 stores, 2 % two-line orders, the same derived
columns) day by day with DuckDB, and hands each day to the lake's own writer
(`LakeStore._add_file`: the same sort, row groups, compression and manifest as an export).
The draws differ from the Python generator's (another RNG); the distributions are the same.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import pyarrow as pa

from benchmarks.analytics_load import CHANNELS, EVENT_MIX, N_SHOPPERS, N_SKUS
from service.analytics.lake import EventLake
from service.analytics.lake_layout import LAYOUT, SCHEMA, shopper_key
from service.analytics.lake_rows import derived


def _sku_probabilities() -> np.ndarray:
    """P(min(zipf(1.6), N_SKUS) = k), k = 1..N_SKUS (numpy's zipf, capped like synthetic())."""
    k = np.arange(1, N_SKUS, dtype=float)
    zeta = float(np.sum(np.arange(1, 2_000_000, dtype=float) ** -1.6)) + (2e6**-0.6) / 0.6
    p = k**-1.6 / zeta
    return np.append(p, 1.0 - p.sum())


def _lookup(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    con.register(f"{name}_arrow", table)
    con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM {name}_arrow")
    con.unregister(f"{name}_arrow")


def _cumulative(name: str, values: list[str], p: np.ndarray) -> pa.Table:
    hi = np.cumsum(p)
    hi[-1] = 1.0 + 1e-9  # every draw in [0, 1) lands somewhere
    lo = np.concatenate([[0.0], hi[:-1]])
    return pa.table({name: values, "lo": lo, "hi": hi})


def write_lake(lake: EventLake, n: int, *, start: datetime, days: int, seed: int = 7) -> int:
    """Write n SYNTHETIC events spread evenly over `days` days from `start`; returns n."""
    con = duckdb.connect(":memory:", config={"threads": 2, "memory_limit": "4GB"})
    con.execute(f"SELECT setseed({(seed % 1000) / 1000})").fetchall()
    names = list(EVENT_MIX)
    _lookup(con, "kinds", _cumulative("event", names, np.array(list(EVENT_MIX.values()))))
    skus = [f"SKU-{i:02d}" for i in range(N_SKUS)]
    _lookup(con, "skus", _cumulative("sku", skus, _sku_probabilities()))
    shoppers = [f"shopper-{i}" for i in range(N_SHOPPERS)]
    _lookup(
        con,
        "shoppers",
        pa.table(
            {
                "no": pa.array(range(N_SHOPPERS), pa.int64()),
                "shopper_id": shoppers,
                "shopper_key": pa.array([shopper_key(s) for s in shoppers], pa.int64()),
            }
        ),
    )
    bands = [derived("Shade Applied", "x", json.dumps({"monk_index": m}))[0] for m in range(1, 11)]
    _lookup(con, "bands", pa.table({"monk": list(range(1, 11)), "band": bands}))
    _lookup(con, "channels", pa.table({"c": list(range(len(CHANNELS))), "channel": CHANNELS}))
    state = lake.read_state()
    now = datetime.now(UTC).replace(tzinfo=None)
    per_day = n // days
    first_id = 1
    for d in range(days):
        m = per_day if d < days - 1 else n - per_day * (days - 1)
        day0 = (start + timedelta(days=d)).astimezone(UTC).replace(tzinfo=None)
        table = con.sql(
            _DAY_SQL, params={"first": first_id, "m": m, "day0": day0, "now": now}
        ).to_arrow_table()
        table = table.select(SCHEMA.names).cast(SCHEMA)
        lake._add_file(state, day0.date().isoformat(), table)
        first_id += m
    state.watermark = state.settled = first_id - 1
    state.as_of = datetime.now(UTC).isoformat()
    state.layout = LAYOUT
    lake._write_state(state)
    con.close()
    return n


# One day of SYNTHETIC events. Row i of the day draws its kind, sku, shopper, second of the
# day, channel, store, dwell (lognormal 9.5, 0.8 by Box-Muller) and face width (normal 138, 7);
# the variant and the few per-kind properties follow the row number as in synthetic().
_DAY_SQL = """
WITH r AS (
    SELECT $first + i AS id, i,
        random() AS u_kind, random() AS u_sku, random() AS u1, random() AS u2,
        CAST(floor(random() * 50000) AS BIGINT) AS shopper_no,
        CAST(floor(random() * 86400) AS BIGINT) AS sec,
        CAST(floor(random() * 5) AS BIGINT) AS chan,
        CAST(floor(random() * 20) AS BIGINT) AS store
    FROM range($m) t(i)
),
e AS (
    SELECT r.*, k.event, s.sku AS sku0, p.shopper_id, p.shopper_key, c.channel,
        CAST(exp(9.5 + 0.8 * sqrt(-2 * ln(1 - r.u1)) * cos(2 * pi() * r.u2)) AS BIGINT) AS dwell,
        round(138 + 7 * sqrt(-2 * ln(1 - r.u2)) * sin(2 * pi() * r.u1), 1) AS width,
        CAST(substr(s.sku, 5) AS INTEGER) AS sku_no
    FROM r
    JOIN kinds k ON r.u_kind >= k.lo AND r.u_kind < k.hi
    JOIN skus s ON r.u_sku >= s.lo AND r.u_sku < s.hi
    JOIN shoppers p ON p.no = r.shopper_no
    JOIN channels c ON c.c = r.chan
),
f AS (
    SELECT e.*,
        e.event IN ('Frame Applied', 'Try-On Dwell', 'Product Added', 'Order Completed')
            AND NOT (e.event = 'Order Completed' AND e.i % 50 = 0) AS has_sku,
        e.event = 'Order Completed' AND e.i % 50 = 0 AS two_line
    FROM e
)
SELECT
    f.id,
    replace(CAST(gen_random_uuid() AS VARCHAR), '-', '') AS message_id,
    f.event,
    f.shopper_id AS anonymous_id,
    CAST(NULL AS VARCHAR) AS user_id,
    f.shopper_id,
    CAST(NULL AS VARCHAR) AS session_id,
    f.channel,
    'store-' || f.store AS store_id,
    CAST(NULL AS VARCHAR) AS kiosk_id,
    CASE WHEN f.has_sku THEN f.sku0 END AS sku,
    CASE WHEN f.has_sku THEN ['black', 'tortoise', 'gold'][f.i % 3 + 1] END AS variant,
    CASE WHEN f.event = 'Shade Applied' THEN 'shade-' || (f.sku_no % 16) END AS shade,
    CASE WHEN f.event = 'Try-On Dwell' THEN f.dwell END AS dwell_ms,
    CAST(NULL AS DECIMAL(12, 2)) AS price,
    CAST(NULL AS VARCHAR) AS currency,
    $day0 + to_seconds(f.sec) AS timestamp,
    $now AS received_at,
    'bench' AS source,
    CASE
        WHEN f.two_line
            THEN '{"products": [{"sku": "' || f.sku0 || '"}, {"sku": "SKU-00"}]}'
        WHEN f.event = 'Shade Applied'
            THEN '{"consent": true, "monk_index": ' || (1 + f.i % 10) || '}'
        WHEN f.event = 'Feedback Submitted' THEN '{"nps": ' || (f.i % 11) || '}'
        WHEN f.event = 'Try-On Started'
            THEN '{"consent": true, "face_width_mm": ' || f.width || '}'
        ELSE '{}'
    END AS properties,
    '{}' AS context,
    b.band AS skin_tone_band,
    CASE WHEN f.event = 'Feedback Submitted' THEN CAST(f.i % 11 AS DOUBLE) END AS nps_score,
    CASE WHEN f.event = 'Try-On Started' THEN CAST(f.width AS DOUBLE) END AS face_width_mm,
    CASE WHEN f.two_line THEN [f.sku0, 'SKU-00'] END AS order_skus,
    CASE
        WHEN f.two_line THEN [CAST(0 AS DECIMAL(18, 2)), CAST(0 AS DECIMAL(18, 2))]
        WHEN f.event = 'Order Completed' THEN [CAST(0 AS DECIMAL(18, 2))]
    END AS order_amounts,
    f.shopper_key
FROM f
LEFT JOIN bands b ON f.event = 'Shade Applied' AND b.monk = 1 + f.i % 10
"""
