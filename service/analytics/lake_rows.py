"""Events from SQL to Arrow: the rows an export reads and the columns derived from them."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, Text, cast, select

from service.analytics.definitions import (
    FEEDBACK_EVENT,
    ORDER_EVENT,
    SHADE_EVENT,
    order_line_amounts,
    skin_tone_band,
)
from service.analytics.lake_layout import SCHEMA, STRING_COLUMNS, shopper_keys
from service.touchpoints.models import Event

# Derived columns (skin_tone_band, nps_score, face_width_mm, order_skus, order_amounts) are
# the definitions of service.analytics.definitions applied once at export, so no report needs
# a JSON function (DuckDB's JSON support is an extension) and every engine reads the same
# values.


def select_rows() -> Any:
    return select(
        Event.id,
        *[getattr(Event, c) for c in STRING_COLUMNS],
        Event.dwell_ms,
        Event.price,
        Event.currency,
        Event.timestamp,
        Event.received_at,
        Event.source,
        cast(Event.properties, Text).label("properties"),
        cast(Event.context, Text).label("context"),
    )


def read_batches(conn: Connection, after_id: int, chunk: int) -> Iterator[pa.Table]:
    stmt = select_rows().where(Event.id > after_id).order_by(Event.id)
    result = conn.execution_options(stream_results=True, yield_per=chunk).execute(stmt)
    for rows in chunks(result, chunk):
        yield to_table(rows)


def chunks(result: Any, n: int) -> Iterator[list[Any]]:
    while True:
        rows = result.fetchmany(n)
        if not rows:
            return
        yield rows


def naive_utc(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def derived(
    event_name: str, sku: str | None, props_text: str | None, price: Any = None
) -> tuple[Any, ...]:
    """(skin_tone_band, nps_score, face_width_mm, order_skus, order_amounts) of one event:
    the report definitions (definitions.py; the SQL in sql.py and fitgap.py) applied once."""
    band = nps = width = skus = amounts = None
    needs = event_name in (SHADE_EVENT, FEEDBACK_EVENT, ORDER_EVENT) or (
        props_text is not None and "face_width_mm" in props_text
    )
    if not needs or not props_text:
        if event_name == ORDER_EVENT and sku is not None:
            amounts = order_line_amounts(sku, price, {})
        return (_band_without_props(event_name), None, None, None, amounts)
    try:
        props = json.loads(props_text)
    except ValueError:
        props = {}
    if not isinstance(props, dict):
        props = {}
    if event_name == SHADE_EVENT:
        band = skin_tone_band(props)
    if event_name == FEEDBACK_EVENT:
        score = _number(props.get("score"))
        nps = score if score is not None else _number(props.get("nps"))
    width = _number(props.get("face_width_mm"))
    if event_name == ORDER_EVENT and sku is None and isinstance(props.get("products"), list):
        skus = [
            str(line["sku"])
            for line in props["products"]
            if isinstance(line, dict) and line.get("sku") is not None
        ]
    if event_name == ORDER_EVENT and (sku is not None or skus is not None):
        amounts = order_line_amounts(sku, price, props)
    return band, nps, width, skus, amounts


def _band_without_props(event_name: str) -> str | None:
    return skin_tone_band({}) if event_name == SHADE_EVENT else None


def to_table(rows: Sequence[Any]) -> pa.Table:
    cols: dict[str, list[Any]] = defaultdict(list)
    names = ["id", *STRING_COLUMNS, "dwell_ms", "price", "currency"]
    for r in rows:
        m = r._mapping if hasattr(r, "_mapping") else r
        for n in names:
            cols[n].append(m[n])
        cols["timestamp"].append(naive_utc(m["timestamp"]))
        ra = m["received_at"]
        cols["received_at"].append(naive_utc(ra) if ra is not None else None)
        cols["source"].append(m["source"])
        props = m["properties"]
        cols["properties"].append(props)
        cols["context"].append(m["context"])
        band, nps, width, skus, amounts = derived(m["event"], m["sku"], props, m["price"])
        cols["skin_tone_band"].append(band)
        cols["nps_score"].append(nps)
        cols["face_width_mm"].append(width)
        cols["order_skus"].append(skus)
        cols["order_amounts"].append(amounts)
    arrays = {f.name: pa.array(cols[f.name], f.type) for f in SCHEMA if f.name != "shopper_key"}
    arrays["shopper_key"] = shopper_keys(arrays["shopper_id"])
    return pa.table(arrays, schema=SCHEMA)


def split_days(table: pa.Table) -> Iterator[tuple[str, pa.Table]]:
    days = pc.strftime(table.column("timestamp"), format="%Y-%m-%d")
    for day in pc.unique(days).to_pylist():
        yield day, table.filter(pc.equal(days, day))
