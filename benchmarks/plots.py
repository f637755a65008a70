"""PNG plots for RESULTS.md from the benchmarks' saved JSON (matplotlib, headless Agg)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS

STAGE_ORDER = ("decode", "landmarks", "smooth", "pose", "measure", "render", "encode")


def _load(results_dir: Path, name: str) -> dict[str, Any] | None:
    path = results_dir / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display on the benchmark machines
    import matplotlib.pyplot as plt

    return plt


def stage_latency(results_dir: Path = RESULTS) -> Path | None:
    """Per-stage latency distribution of our pipeline, and end-to-end floor / ours / ours
    drawn every frame / reference."""
    data = _load(results_dir, "frame_latency")
    if not data or "samples" not in data:
        return None
    plt = _pyplot()
    sizes = list(data["samples"])
    fig, axes = plt.subplots(2, len(sizes), figsize=(6 * len(sizes), 8), squeeze=False)
    for col, size in enumerate(sizes):
        s = data["samples"][size]
        ax = axes[0][col]
        ax.boxplot([s["stages"][k] for k in STAGE_ORDER], tick_labels=list(STAGE_ORDER),
                   showfliers=False)
        ax.set_title(f"{size}: our stages (ms)")
        ax.tick_params(axis="x", rotation=30)
        ax = axes[1][col]
        names = [k for k in ("floor", "ours", "every", "region", "reference")
                 if k in s["series"]]
        label = {"every": "drawn every frame", "region": "region reply"}
        labels = [label.get(k, k) for k in names]
        ax.boxplot([s["series"][k] for k in names], tick_labels=labels, showfliers=False)
        ax.set_yscale("log")
        ax.set_title(f"{size}: end to end (ms, log)")
    fig.tight_layout()
    out = results_dir / "frame_latency.png"
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def streams(results_dir: Path = RESULTS) -> Path | None:
    """Total fps and p95 latency against concurrent WebSocket streams."""
    data = _load(results_dir, "stream_roundtrip")
    if not data:
        return None
    rows = [r for r in data["rows"] if r.get("path") == "websocket round trip"]
    if not rows:
        return None
    plt = _pyplot()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    # One line per server worker-process count (older results have no "workers": one server).
    for workers in sorted({r.get("workers") or 1 for r in rows}):
        mine = [r for r in rows if (r.get("workers") or 1) == workers]
        n = [r["streams"] for r in mine]
        label = f"{workers} worker process{'es' if workers > 1 else ''}"
        ax.plot(n, [r["total_fps"] for r in mine], "o-", label=label)
        ax2.plot(n, [r["p95_ms"] for r in mine], "s--", label=label)
    n = sorted({r["streams"] for r in rows})
    ax.set_xlabel("concurrent streams")
    ax.set_ylabel("frames/s (all streams)")
    ax.set_title("total fps")
    ax2.set_xlabel("concurrent streams")
    ax2.set_ylabel("p95 round trip (ms)")
    ax2.set_title("p95 latency")
    ax2.set_xticks(n)
    ax2.legend()
    ax.set_xticks(n)
    ax.legend()
    fig.tight_layout()
    out = results_dir / "streams.png"
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def all_plots(results_dir: Path = RESULTS) -> list[Path]:
    return [p for p in (stage_latency(results_dir), streams(results_dir)) if p is not None]
