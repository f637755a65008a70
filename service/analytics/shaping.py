"""Report rows from aggregated numbers: the same keys, rates, shares and order on every engine
(service.analytics.queries on SQL, service.analytics.duck on DuckDB)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from service.analytics.definitions import DIMENSIONS

Row = dict[str, Any]
CENT = Decimal("0.01")


def check_dims(dims: Sequence[str], allowed: Sequence[str] = DIMENSIONS) -> list[str]:
    bad = [d for d in dims if d not in allowed]
    if bad:
        raise ValueError(f"unknown group_by {bad}; choose from {list(allowed)}")
    return list(dict.fromkeys(dims))


def key_names(dims: Sequence[str]) -> list[str]:
    return ["store_id" if d == "store" else d for d in dims]


def iso_day(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date | datetime) else value


def sort_products(rows: list[Row], names: Sequence[str]) -> list[Row]:
    return sorted(rows, key=lambda r: (-r["try_ons"], *(str(r[n]) for n in names)))


def funnel_row(
    names: Sequence[str],
    key: Sequence[Any],
    tried: int,
    carted: int,
    ordered: int,
    window_hours: float,
    *,
    revenue: Any = 0,
    currency: str | None = None,
) -> Row:
    return {
        **dict(zip(names, key, strict=True)),
        "tried": tried,
        "carted": carted,
        "ordered": ordered,
        "cart_rate": carted / tried,
        "order_rate": ordered / tried,
        "cart_to_order_rate": ordered / carted if carted else None,
        "window_hours": window_hours,
        "revenue": cents(revenue),
        "currency": currency,
    }


def cents(value: Any) -> float:
    """A money sum (Decimal from PostgreSQL and DuckDB, float from SQLite) to the cent."""
    return float(Decimal(str(value or 0)).quantize(CENT, rounding=ROUND_HALF_EVEN))


def one_currency(lo: str | None, hi: str | None, missing: Any) -> str | None:
    """The currency of a row's orders when they all name the same one (min = max, none
    without); else None (no orders, mixed, or an order without a currency)."""
    return lo if lo is not None and lo == hi and not missing else None


def funnel_totals(rows: Sequence[Row]) -> Row:
    """The funnel's `totals`: revenue = the rows' sum; currency when every row with an
    order reports the same one, else None ("mixed")."""
    with_orders = [r for r in rows if r["ordered"]]
    currencies = {r["currency"] for r in with_orders}
    return {
        "revenue": cents(sum(Decimal(str(r["revenue"])) for r in rows)),
        "currency": currencies.pop() if len(currencies) == 1 else None,
    }


def sort_funnel(rows: list[Row], names: Sequence[str]) -> list[Row]:
    return sorted(rows, key=lambda r: (-r["tried"], *(str(r[n]) for n in names)))


def shade_shares(out: list[Row]) -> list[Row]:
    """Each row's share of the applications in its skin-tone band (or of all), sorted."""
    totals: dict[Any, int] = {}
    for r in out:
        totals[r.get("skin_tone_band")] = totals.get(r.get("skin_tone_band"), 0) + r["applications"]
    for r in out:
        r["share"] = r["applications"] / totals[r.get("skin_tone_band")]
    out.sort(key=lambda r: (str(r.get("skin_tone_band", "")), -r["applications"], r["shade"]))
    return out


def _nps_row(channel: str, n: int, p: int, d: int) -> Row:
    return {
        "channel": channel,
        "responses": n,
        "promoters": p,
        "passives": n - p - d,
        "detractors": d,
        "nps": 100.0 * (p - d) / n,
    }


def nps_rows(counts: Sequence[tuple[str, int, int, int]]) -> list[Row]:
    """(channel, responses, promoters, detractors) -> rows per channel plus "all"."""
    out = sorted((_nps_row(*c) for c in counts), key=lambda r: r["channel"])
    if out:
        out.append(
            _nps_row(
                "all",
                sum(r["responses"] for r in out),
                sum(r["promoters"] for r in out),
                sum(r["detractors"] for r in out),
            )
        )
    return out
