"""Analytics queries over the events table: products, funnel, shades, NPS (aggregated in SQL)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, case, func, select, union_all
from sqlalchemy.orm import Session

from service.analytics import rollups, shaping
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
from service.analytics.sql import (
    canonical_shoppers,
    dimension_columns,
    epoch_s,
    filter_clause,
    is_pg,
    iso_day,
    order_amount,
    order_lines,
    percentiles,
    shopper_key,
    skin_band,
)
from service.touchpoints.models import Event

Row = dict[str, Any]
# "all": every metric (unique shoppers and dwell percentiles need raw events);
# "counts": only what sums exactly, from the daily rollups (raw events for partial days).
METRICS = ("all", "counts")


_check_dims = shaping.check_dims
_key_names = shaping.key_names


def _check_metrics(metrics: str) -> None:
    if metrics not in METRICS:
        raise ValueError(f"unknown metrics {metrics!r}; choose from {list(METRICS)}")


def _check_counts(f: Filters) -> None:
    # The daily rollups are keyed by sku, not product type: filter the raw events instead.
    if f.product_type:
        raise ValueError("product_type needs metrics=all (the rollups have no product type)")


def product_summary(
    session: Session, f: Filters, group_by: Sequence[str] = ("variant",), metrics: str = "all"
) -> list[Row]:
    """Per product (and variant/channel/store/day): try-ons, unique shoppers, dwell median/p90.

    Try-ons count TRY_ON_EVENTS with a sku; dwell comes from "Try-On Dwell" events. Unique
    shoppers count linked ids (hand-off, identify) once. metrics="counts" returns only
    try_ons, dwell_events and dwell_mean_ms, read from the daily rollups.
    """
    dims = _check_dims(group_by, ("variant", "channel", "store", "day"))
    _check_metrics(metrics)
    names = ["sku", *_key_names(dims)]
    if metrics == "counts":
        _check_counts(f)
        return _product_counts(session, f, names)
    keys = [Event.sku.label("sku"), *dimension_columns(session, dims)]
    canon = canonical_shoppers(session)
    counts = (
        select(
            *keys,
            func.count().label("try_ons"),
            func.count(func.distinct(shopper_key(canon))).label("unique_shoppers"),
        )
        .select_from(Event)
        .outerjoin(canon, canon.c.id == Event.shopper_id)
        .where(filter_clause(f, TRY_ON_EVENTS), Event.sku.is_not(None))
        .group_by(*keys)
    )
    rows: dict[tuple, Row] = {}
    for r in session.execute(counts):
        m = r._mapping
        k = tuple(iso_day(m[n]) for n in names)
        rows[k] = {
            **dict(zip(names, k, strict=True)),
            "try_ons": m["try_ons"],
            "unique_shoppers": m["unique_shoppers"],
            "dwell_events": 0,
            "dwell_median_ms": None,
            "dwell_p90_ms": None,
        }
    dwell_where = and_(
        filter_clause(f, (DWELL_EVENT,)), Event.sku.is_not(None), Event.dwell_ms.is_not(None)
    )
    for k, d in percentiles(session, keys, Event.dwell_ms, dwell_where, (0.5, 0.9)).items():
        row = rows.setdefault(
            k, {**dict(zip(names, k, strict=True)), "try_ons": 0, "unique_shoppers": 0}
        )
        row.update(dwell_events=d["n"], dwell_median_ms=d["p50"], dwell_p90_ms=d["p90"])
    return shaping.sort_products(list(rows.values()), names)


def _product_counts(session: Session, f: Filters, names: list[str]) -> list[Row]:
    out = [
        {
            **dict(zip(names, k, strict=True)),
            "try_ons": t,
            "dwell_events": n,
            "dwell_mean_ms": total / n if n else None,
        }
        for k, (t, n, total) in rollups.product_counts(session, f, names).items()
    ]
    return sorted(out, key=lambda r: (-r["try_ons"], *(str(r[n]) for n in names)))


def funnel(
    session: Session, f: Filters, window_hours: float, group_by: Sequence[str] = ()
) -> list[Row]:
    """Try-on -> added to cart -> order, per product, within `window_hours` of the first try-on.

    A cohort is one shopper and one product (and each requested dimension) whose first
    try-on falls in the filter range; it counts as carted / ordered when the same shopper
    id added / ordered that sku (on any channel) no earlier than that first try-on and
    within the window after it. Filters apply to the try-on, not to the cart or order.
    "Shopper" is the canonical id of the linked group (shopper_aliases: hand-off claims,
    identify), so a kiosk try-on and the order from the phone that claimed it convert.
    """
    dims = _check_dims(group_by, ("variant", "channel", "store", "day"))
    keys = [Event.sku.label("sku"), *dimension_columns(session, dims)]
    names = ["sku", *_key_names(dims)]
    window_s = window_hours * 3600.0
    canon = canonical_shoppers(session)
    who = shopper_key(canon).label("shopper_id")
    cohorts = (
        select(who, *keys, func.min(Event.timestamp).label("t0"))
        .select_from(Event)
        .outerjoin(canon, canon.c.id == Event.shopper_id)
        .where(filter_clause(f, TRY_ON_EVENTS), Event.sku.is_not(None))
        .group_by(who, *keys)
        .subquery("c")
    )

    # The cart and order rows that can count (an index range on (event, timestamp)); joined
    # to the cohorts on (shopper, sku) so the database can hash-join instead of probing once
    # per cohort.
    in_range = []
    if f.start is not None:
        in_range.append(Event.timestamp >= f.start)
    if f.end is not None:
        in_range.append(Event.timestamp < f.end + timedelta(seconds=window_s))
    is_order = Event.event == ORDER_EVENT
    raw_conv = union_all(
        select(
            Event.shopper_id,
            Event.sku,
            Event.event,
            Event.timestamp,
            case((is_order, order_amount(session)), else_=0).label("amount"),
            Event.currency,
        ).where(Event.event.in_((CART_EVENT, ORDER_EVENT)), Event.sku.is_not(None), *in_range),
        order_lines(session, *in_range, amounts=True),
    ).subquery("rc")
    conv_q = (
        select(
            func.coalesce(canon.c.canonical, raw_conv.c.shopper_id).label("shopper_id"),
            raw_conv.c.sku,
            raw_conv.c.event,
            raw_conv.c.timestamp,
            raw_conv.c.amount,
            raw_conv.c.currency,
        )
        .select_from(raw_conv)
        .outerjoin(canon, canon.c.id == raw_conv.c.shopper_id)
    )
    if is_pg(session):
        conv: Any = conv_q.subquery("v")
    else:
        # SQLite would otherwise flatten this into one index probe per cohort; materialized,
        # it reads the cart/order rows once and joins them through an automatic index.
        conv = conv_q.cte("v").prefix_with("MATERIALIZED")
    joined = (
        select(
            *[cohorts.c[n] for n in names],
            func.max(case((conv.c.event == CART_EVENT, 1), else_=0)).label("carted"),
            func.max(case((conv.c.event == ORDER_EVENT, 1), else_=0)).label("ordered"),
            # Revenue: every order line of the sku in the window (definitions.line_amount).
            func.sum(case((conv.c.event == ORDER_EVENT, conv.c.amount), else_=0)).label("revenue"),
            func.min(case((conv.c.event == ORDER_EVENT, conv.c.currency))).label("cur_min"),
            func.max(case((conv.c.event == ORDER_EVENT, conv.c.currency))).label("cur_max"),
            func.sum(
                case((and_(conv.c.event == ORDER_EVENT, conv.c.currency.is_(None)), 1), else_=0)
            ).label("cur_none"),
        )
        .select_from(cohorts)
        .outerjoin(
            conv,
            and_(
                conv.c.shopper_id == cohorts.c.shopper_id,
                conv.c.sku == cohorts.c.sku,
                conv.c.timestamp >= cohorts.c.t0,
                epoch_s(session, conv.c.timestamp) <= epoch_s(session, cohorts.c.t0) + window_s,
            ),
        )
        .group_by(cohorts.c.shopper_id, *[cohorts.c[n] for n in names])
        .subquery("j")
    )
    gk = [joined.c[n] for n in names]
    stmt = select(
        *gk,
        func.count().label("tried"),
        func.sum(joined.c.carted).label("carted"),
        func.sum(joined.c.ordered).label("ordered"),
        func.sum(joined.c.revenue).label("revenue"),
        func.min(joined.c.cur_min).label("cur_min"),
        func.max(joined.c.cur_max).label("cur_max"),
        func.sum(joined.c.cur_none).label("cur_none"),
    ).group_by(*gk)
    out = []
    for r in session.execute(stmt):
        m = r._mapping
        out.append(
            shaping.funnel_row(
                names,
                [iso_day(m[n]) for n in names],
                int(m["tried"]),
                int(m["carted"] or 0),
                int(m["ordered"] or 0),
                window_hours,
                revenue=m["revenue"],
                currency=shaping.one_currency(m["cur_min"], m["cur_max"], m["cur_none"]),
            )
        )
    return shaping.sort_funnel(out, names)


def shade_popularity(
    session: Session, f: Filters, by_skin_tone: bool = False, metrics: str = "all"
) -> list[Row]:
    """Shade Applied events per shade (and per skin-tone band when asked): uses, unique shoppers.

    The band is definitions.skin_tone_band: properties.skin_tone_band when sent as a string,
    else derived from a numeric properties.monk_index (MONK_BANDS), else "unknown".
    metrics="counts" leaves out unique_shoppers and reads the daily rollups.
    """
    _check_metrics(metrics)
    if metrics == "counts":
        _check_counts(f)
        group = ["shade", "skin_tone_band"] if by_skin_tone else ["shade"]
        out = [
            {**dict(zip(group, k, strict=True)), "applications": n}
            for k, (n,) in rollups.shade_counts(session, f, group).items()
        ]
    else:
        keys: list[Any] = [Event.shade.label("shade")]
        if by_skin_tone:
            keys.append(skin_band(session).label("skin_tone_band"))
        canon = canonical_shoppers(session)
        stmt = (
            select(
                *keys,
                func.count().label("applications"),
                func.count(func.distinct(shopper_key(canon))).label("unique_shoppers"),
            )
            .select_from(Event)
            .outerjoin(canon, canon.c.id == Event.shopper_id)
            .where(filter_clause(f, (SHADE_EVENT,)), Event.shade.is_not(None))
            .group_by(*keys)
        )
        out = [dict(r._mapping) for r in session.execute(stmt)]
    return shaping.shade_shares(out)


def nps(session: Session, f: Filters) -> list[Row]:
    """NPS per channel from Feedback Submitted events (properties.score, or .nps, 0-10)."""
    score = func.coalesce(Event.properties["score"].as_float(), Event.properties["nps"].as_float())
    inner = (
        select(Event.channel.label("channel"), score.label("score"))
        .where(filter_clause(f, (FEEDBACK_EVENT,)))
        .subquery()
    )
    s = inner.c.score
    valid = and_(s >= 0, s <= 10)
    stmt = (
        select(
            inner.c.channel,
            func.count().label("responses"),
            func.sum(case((s >= NPS_PROMOTER_MIN, 1), else_=0)).label("promoters"),
            func.sum(case((s <= NPS_DETRACTOR_MAX, 1), else_=0)).label("detractors"),
        )
        .where(valid)
        .group_by(inner.c.channel)
    )
    counts = [
        (r.channel, int(r.responses), int(r.promoters or 0), int(r.detractors or 0))
        for r in session.execute(stmt)
    ]
    return shaping.nps_rows(counts)
