"""Dialect helpers so each query is written once for SQLite and PostgreSQL."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
from sqlalchemy import (
    Connection,
    Date,
    Float,
    Numeric,
    Select,
    and_,
    case,
    cast,
    func,
    select,
    true,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import Subquery

from service.analytics.definitions import (
    FEEDBACK_EVENT,
    MAX_BAND_CHARS,
    MONK_BANDS,
    UNKNOWN_BAND,
    Filters,
)
from service.identity.models import ShopperGroup
from service.touchpoints.models import Event


def is_pg(session: Session | Connection) -> bool:
    bind = session if isinstance(session, Connection) else session.get_bind()
    return bind.dialect.name == "postgresql"


def epoch_s(session: Session, col: Any) -> ColumnElement[float] | ColumnElement[int]:
    """Seconds since 1970 of a timestamp column (for windows: t <= t0 + w)."""
    if is_pg(session):
        return func.extract("epoch", col)
    # SQLite stores naive-UTC text; julianday parses it.
    return (func.julianday(col) - 2440587.5) * 86400.0


def day_of(session: Session | Connection, col: Any) -> ColumnElement[Any]:
    """The UTC calendar day of a timestamp."""
    if is_pg(session):
        return cast(func.timezone("UTC", col), Date)
    return func.date(col)


def iso_day(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date | datetime) else value


def dimension_columns(session: Session, dims: Sequence[str]) -> list[ColumnElement[Any]]:
    cols: dict[str, ColumnElement[Any]] = {
        "variant": Event.variant.label("variant"),
        "channel": Event.channel.label("channel"),
        "store": Event.store_id.label("store_id"),
        "day": day_of(session, Event.timestamp).label("day"),
    }
    return [cols[d] for d in dims]


def filter_clause(f: Filters, events: Sequence[str]) -> ColumnElement[bool]:
    conds: list[ColumnElement[bool]] = [
        Event.event.in_(events) if len(events) > 1 else Event.event == events[0]
    ]
    if f.start is not None:
        conds.append(Event.timestamp >= f.start)
    if f.end is not None:
        conds.append(Event.timestamp < f.end)
    if f.channel:
        conds.append(Event.channel == f.channel)
    if f.store_id:
        conds.append(Event.store_id == f.store_id)
    if f.product_type and FEEDBACK_EVENT not in events:
        # A lipstick event names its shade; a glasses event never does.
        lipstick = f.product_type == "lipstick"
        conds.append(Event.shade.is_not(None) if lipstick else Event.shade.is_(None))
    return and_(*conds)


def percentiles(
    session: Session,
    keys: Sequence[ColumnElement[Any]],
    value: Any,
    where: ColumnElement[bool],
    ps: Sequence[float],
) -> dict[tuple, dict[str, Any]]:
    """{group key: {"n": count, "p50": ..}} with linear interpolation (percentile_cont semantics).

    PostgreSQL computes percentile_cont itself and returns one row per group. SQLite reads
    only the key and value columns (an index-only range scan) and numpy interpolates.
    """
    names = [f"p{round(p * 100)}" for p in ps]
    out: dict[tuple, dict[str, Any]] = {}
    if is_pg(session):
        stmt = (
            select(
                *keys,
                func.count().label("n"),
                *[
                    func.percentile_cont(p).within_group(value).label(n)
                    for p, n in zip(ps, names, strict=True)
                ],
            )
            .where(where)
            .group_by(*keys)
        )
        for row in session.execute(stmt):
            m = row._mapping
            out[tuple(iso_day(m[k.name]) for k in keys)] = {
                "n": m["n"],
                **{n: _f(m[n]) for n in names},
            }
        return out
    # SQLite: no ordered-set aggregates, and a window query (row_number + count per group)
    # costs two sorts. Fetching just (group key, value) off the covering index and letting
    # numpy interpolate is several times faster there; numpy's default "linear" method is
    # percentile_cont's definition.
    groups: dict[tuple, list[float]] = defaultdict(list)
    for row in session.connection().execute(select(*keys, value).where(where)):
        groups[tuple(iso_day(x) for x in row[:-1])].append(row[-1])
    for k, vs in groups.items():
        arr = np.asarray(vs, dtype=float)
        qs = np.percentile(arr, [p * 100 for p in ps])
        out[k] = {"n": int(arr.size), **{n: float(q) for n, q in zip(names, qs, strict=True)}}
    return out


def _f(v: Any) -> float | None:
    return None if v is None else float(v)


def _json_number(session: Session, doc: Any, *path: str) -> tuple[Any, Any]:
    """(is a JSON number, its value) at path in doc."""
    if is_pg(session):
        value = func.jsonb_extract_path(doc, *path)
        text_ = func.jsonb_extract_path_text(doc, *path)
        return func.jsonb_typeof(value) == "number", cast(text_, Numeric)
    at = "$" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in path)
    return func.json_type(doc, at).in_(("integer", "real")), func.json_extract(doc, at)


def _amount(session: Session, doc: Any, price: Any, *path: str) -> ColumnElement[Any]:
    """definitions.line_amount: price x the numeric `quantity` at path (else 1); 0 without a
    price. `price` None: the numeric `price` at path."""
    q_ok, q = _json_number(session, doc, *path, "quantity")
    qty = case((q_ok, q), else_=1)
    if price is None:
        p_ok, p = _json_number(session, doc, *path, "price")
        return case((p_ok, p * qty), else_=0)
    return case((price.is_not(None), price * qty), else_=0)


def order_amount(session: Session) -> ColumnElement[Any]:
    """definitions.order_line_amounts of a single-sku Order Completed (the sku column): the
    price column x properties.quantity; without a price, its one `products` line of that sku."""
    props = Event.properties
    if is_pg(session):
        lines = func.jsonb_extract_path(props, "products")
        one = and_(
            case((func.jsonb_typeof(lines) == "array", func.jsonb_array_length(lines)), else_=0)
            == 1,
            func.jsonb_extract_path_text(props, "products", "0", "sku") == Event.sku,
        )
    else:
        one = and_(
            func.json_type(props, "$.products") == "array",
            func.json_array_length(props, "$.products") == 1,
            func.json_extract(props, "$.products[0].sku") == Event.sku,
        )
    return case(
        (Event.price.is_not(None), _amount(session, props, Event.price)),
        (one, _amount(session, props, None, "products", "0")),
        else_=0,
    )


def order_lines(
    session: Session, *conds: ColumnElement[bool], amounts: bool = False
) -> Select[Any]:
    """(shopper_id, sku, event, timestamp) for each line of multi-line orders, plus the
    line's `amount` (definitions.line_amount) and the order's `currency` when `amounts`.

    An Order Completed with several `products` lines has no sku column (ingest stores one
    only for single-line orders), so the lines are unnested from the JSON here.
    """
    if is_pg(session):
        tv = func.jsonb_array_elements(Event.properties["products"]).table_valued(
            "value", joins_implicitly=True
        )
        sku = func.jsonb_extract_path_text(tv.c.value, "sku")
        guard = func.jsonb_typeof(Event.properties["products"]) == "array"
    else:
        tv = func.json_each(Event.properties, "$.products").table_valued(
            "value", joins_implicitly=True
        )
        sku = func.json_extract(tv.c.value, "$.sku")
        guard = func.json_type(Event.properties, "$.products") == "array"
    cols: list[Any] = [Event.shopper_id, sku.label("sku"), Event.event, Event.timestamp]
    if amounts:
        cols += [_amount(session, tv.c.value, None).label("amount"), Event.currency]
    return (
        select(*cols)
        .select_from(Event)
        .join(tv, true())
        .where(Event.event == "Order Completed", Event.sku.is_(None), guard, *conds)
    )


def skin_band(session: Session | Connection) -> ColumnElement[str]:
    """definitions.skin_tone_band in SQL: a string band, else numeric monk_index, else unknown."""
    props = Event.properties
    if is_pg(session):
        band_ok = func.jsonb_typeof(props["skin_tone_band"]) == "string"
        monk_ok = func.jsonb_typeof(props["monk_index"]) == "number"
    else:
        band_ok = func.json_type(props, "$.skin_tone_band") == "text"
        monk_ok = func.json_type(props, "$.monk_index").in_(("integer", "real"))
    band = props["skin_tone_band"].as_string()
    # CASE, not AND: PostgreSQL may evaluate AND's operands in any order, and a cast of a
    # non-numeric string would fail the whole query.
    monk = case((monk_ok, cast(props["monk_index"].as_float(), Float)), else_=None)
    return case(
        (and_(band_ok, func.length(band) <= MAX_BAND_CHARS), band),
        *[(and_(monk >= lo, monk < hi + 1), label) for lo, hi, label in MONK_BANDS],
        else_=UNKNOWN_BAND,
    )


def canonical_shoppers(session: Session) -> Subquery:
    """(id, canonical): each linked shopper id and its group's canonical (smallest) id.

    From analytics_shopper_groups, which identity.link_shoppers keeps in step with
    shopper_aliases (hand-off claims, identify); an id with no link is absent (it is its own
    canonical id). A real table, not a recursive CTE: PostgreSQL guessed such a CTE at 50M
    rows and chose a nested loop (1.4 s for a 7-day report at 60k events).
    """
    return select(
        ShopperGroup.shopper_id.label("id"), ShopperGroup.canonical_id.label("canonical")
    ).subquery("canon")


def shopper_key(canon: Subquery) -> ColumnElement[str]:
    """The canonical shopper of an events row (outer-join `canon` on events.shopper_id)."""
    return func.coalesce(canon.c.canonical, Event.shopper_id)
