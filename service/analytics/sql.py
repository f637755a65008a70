"""Dialect helpers so each query is written once for SQLite and PostgreSQL."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, Integer, Select, and_, case, cast, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from service.analytics.definitions import Filters
from service.db.models import Event


def is_pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def epoch_s(session: Session, col: Any) -> ColumnElement[float]:
    """Seconds since 1970 of a timestamp column (for windows: t <= t0 + w)."""
    if is_pg(session):
        return func.extract("epoch", col)
    # SQLite stores naive-UTC text; julianday parses it.
    return (func.julianday(col) - 2440587.5) * 86400.0


def day_of(session: Session, col: Any) -> ColumnElement[Any]:
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
    return and_(*conds)


def percentiles(
    session: Session,
    keys: Sequence[ColumnElement[Any]],
    value: Any,
    where: ColumnElement[bool],
    ps: Sequence[float],
) -> dict[tuple, dict[str, Any]]:
    """{group key: {"n": count, "p50": ..}} with linear interpolation (percentile_cont semantics).

    PostgreSQL computes percentile_cont itself. SQLite has no ordered-set aggregates, so a
    window query numbers the rows of each group in order and keeps only the (at most two)
    rows around each percentile's position; Python interpolates between them. Either way the
    database does the sorting and only a few rows per group come back.
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
    part = list(keys)
    inner = (
        select(
            *keys,
            value.label("v"),
            (func.row_number().over(partition_by=part, order_by=value) - 1).label("rn"),
            func.count().over(partition_by=part).label("n"),
        )
        .where(where)
        .subquery()
    )
    rn, n, v = inner.c.rn, inner.c.n, inner.c.v
    cols: list[Any] = []
    wanted: list[ColumnElement[bool]] = []
    for p, name in zip(ps, names, strict=True):
        lo = cast((n - 1) * p, Integer)
        cols += [
            func.max(case((rn == lo, v))).label(f"{name}_lo"),
            func.max(case((rn == lo + 1, v))).label(f"{name}_hi"),
        ]
        wanted += [rn == lo, rn == lo + 1]
    gk = [inner.c[k.name] for k in keys]
    stmt2: Select[Any] = (
        select(*gk, func.max(n).label("n"), *cols).where(or_(*wanted)).group_by(*gk)
    )
    for row in session.execute(stmt2):
        m = row._mapping
        vals: dict[str, Any] = {"n": m["n"]}
        for p, name in zip(ps, names, strict=True):
            pos = (m["n"] - 1) * p
            frac = pos - math.floor(pos)
            lo_v, hi_v = m[f"{name}_lo"], m[f"{name}_hi"]
            vals[name] = (
                None
                if lo_v is None
                else float(lo_v) + frac * (float(hi_v if hi_v is not None else lo_v) - float(lo_v))
            )
        out[tuple(iso_day(m[k.name]) for k in keys)] = vals
    return out


def _f(v: Any) -> float | None:
    return None if v is None else float(v)
