"""Small shared helpers for benchmarks: latency stats, machine info, JSON + markdown results."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Stats:
    """Latency summary of one series of samples in milliseconds."""

    n: int
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float] | np.ndarray) -> Stats:
        a = np.asarray(samples_ms, dtype=np.float64)
        if a.size == 0:
            raise ValueError("no samples")
        p50, p95, p99 = np.percentile(a, [50, 95, 99])
        return cls(int(a.size), float(a.mean()), float(p50), float(p95), float(p99),
                   float(a.min()), float(a.max()))

    @property
    def fps(self) -> float:
        """Throughput implied by the mean latency (one worker)."""
        return 1000.0 / self.mean_ms if self.mean_ms > 0 else float("inf")

    def to_dict(self, digits: int = 3) -> dict[str, float]:
        d = {k: round(v, digits) if isinstance(v, float) else v for k, v in asdict(self).items()}
        d["fps"] = round(self.fps, 1)
        return d


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu,
        "cpus": cpus,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": np.__version__,
        # Other work on a shared machine inflates tails; keep the load next to the numbers.
        "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A GitHub markdown table; columns in first-seen order, numbers right-aligned."""
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    numeric = {c for c in cols if all(isinstance(r.get(c), int | float) for r in rows if c in r)}
    head = "| " + " | ".join(cols) + " |"
    sep = "|" + "|".join("---:" if c in numeric else "---" for c in cols) + "|"

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:,.3f}".rstrip("0").rstrip(".") if abs(v) < 1000 else f"{v:,.0f}"
        return "" if v is None else str(v)

    body = ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def write_report(name: str, payload: Mapping[str, Any], markdown: str, *,
                 results_dir: Path = RESULTS) -> tuple[Path, Path]:
    """Save a benchmark's own payload and markdown as benchmarks/results/<name>.{json,md}."""
    results_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = results_dir / f"{name}.json", results_dir / f"{name}.md"
    json_path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    md_path.write_text(markdown.rstrip("\n") + "\n")
    return json_path, md_path


def write_results(name: str, rows: Sequence[Mapping[str, Any]], *, title: str | None = None,
                  notes: str = "", extra: Mapping[str, Any] | None = None,
                  results_dir: Path = RESULTS) -> tuple[Path, Path]:
    """Save rows as benchmarks/results/<name>.json (with machine info) and <name>.md."""
    results_dir.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    payload = {"name": name, "machine": machine, "rows": list(rows), **(extra or {})}
    json_path = results_dir / f"{name}.json"
    json_path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    md = [f"# {title or name}", ""]
    if notes:
        md += [notes.strip(), ""]
    md += [markdown_table(rows), "", f"Machine: {machine['cpu']}, {machine['cpus']} CPUs, "
           f"load {machine['load_avg_1m']}, Python {machine['python']}; {machine['time']}.", ""]
    md_path = results_dir / f"{name}.md"
    md_path.write_text("\n".join(md))
    return json_path, md_path


def wait_until_ready(url: str, proc: Any, log: Path, timeout_s: float = 120.0) -> None:
    """Poll http://url/readyz until 200; a server that exits or never gets ready is killed and
    the tail of its log is the error (benchmarks that start the service as a subprocess)."""
    import httpx  # test/bench-only dependency

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"http://{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise SystemExit(f"server did not start:\n{tail}")
        time.sleep(0.2)
