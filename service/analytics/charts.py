"""Dashboard charts (PNG or SVG) drawn with matplotlib's Agg backend, no pyplot global state."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any, Literal

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure

ChartFormat = Literal["png", "svg"]
MEDIA_TYPES = {"png": "image/png", "svg": "image/svg+xml"}
MAX_BARS = 20


def _render(fig: Figure, fmt: ChartFormat) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format=fmt, dpi=100)
    return buf.getvalue()


def _bars(
    title: str,
    labels: Sequence[str],
    series: dict[str, Sequence[float]],
    ylabel: str,
    fmt: ChartFormat,
) -> bytes:
    fig = Figure(figsize=(8, 4.5))
    ax = fig.add_subplot()
    n = max(len(series), 1)
    width = 0.8 / n
    xs = range(len(labels))
    for i, (name, values) in enumerate(series.items()):
        ax.bar([x + i * width - 0.4 + width / 2 for x in xs], values, width, label=name)
    ax.set_xticks(list(xs), labels, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if len(series) > 1:
        ax.legend()
    return _render(fig, fmt)


def products_chart(rows: Sequence[dict[str, Any]], fmt: ChartFormat) -> bytes:
    top = sorted(rows, key=lambda r: -r["try_ons"])[:MAX_BARS]
    labels = [f"{r['sku']}/{r.get('variant') or '-'}" if "variant" in r else r["sku"] for r in top]
    return _bars(
        "Try-ons per product",
        labels,
        {
            "try-ons": [r["try_ons"] for r in top],
            "unique shoppers": [r["unique_shoppers"] for r in top],
        },
        "count",
        fmt,
    )


def funnel_chart(rows: Sequence[dict[str, Any]], fmt: ChartFormat) -> bytes:
    top = sorted(rows, key=lambda r: -r["tried"])[:MAX_BARS]
    return _bars(
        "Try-on -> cart -> order",
        [r["sku"] for r in top],
        {
            "tried": [r["tried"] for r in top],
            "carted": [r["carted"] for r in top],
            "ordered": [r["ordered"] for r in top],
        },
        "shoppers",
        fmt,
    )


def nps_chart(rows: Sequence[dict[str, Any]], fmt: ChartFormat) -> bytes:
    return _bars(
        "NPS by channel",
        [r["channel"] for r in rows],
        {"NPS": [r["nps"] for r in rows]},
        "NPS (-100..100)",
        fmt,
    )


def shades_chart(rows: Sequence[dict[str, Any]], fmt: ChartFormat) -> bytes:
    top = sorted(rows, key=lambda r: -r["applications"])[:MAX_BARS]
    labels = [
        f"{r['shade']} ({r['skin_tone_band']})" if "skin_tone_band" in r else r["shade"]
        for r in top
    ]
    return _bars(
        "Shade popularity",
        labels,
        {"applications": [r["applications"] for r in top]},
        "applications",
        fmt,
    )


def fit_gap_chart(report: dict[str, Any], fmt: ChartFormat) -> bytes:
    fig = Figure(figsize=(8, 4.5))
    ax = fig.add_subplot()
    bins = report["bins"]
    if bins:
        colors = ["tab:red" if b["gap"] else "tab:blue" for b in bins]
        ax.bar(
            [b["lo_mm"] for b in bins],
            [b["shoppers"] for b in bins],
            width=report["bin_mm"],
            align="edge",
            color=colors,
            edgecolor="white",
        )
    for fr in report["frames"]:
        ax.axvline(fr["suits_face_width_mm"], color="black", alpha=0.4, linewidth=1)
    ax.set_xlabel("face width (mm, consented); lines = catalog frames at the face width they suit")
    ax.set_ylabel("shoppers")
    ax.set_title("Fit gap (red: face widths no catalog frame fits)")
    return _render(fig, fmt)
