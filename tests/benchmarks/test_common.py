"""benchmarks/common.py: latency stats and result files (no timing is asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.common import Stats, machine_info, markdown_table, write_results


def test_stats_from_samples() -> None:
    s = Stats.from_samples([float(v) for v in range(1, 101)])
    assert s.n == 100 and s.min_ms == 1.0 and s.max_ms == 100.0
    assert s.p50_ms == pytest.approx(50.5)
    assert s.p95_ms == pytest.approx(95.05)
    assert s.fps == pytest.approx(1000 / 50.5)
    assert s.to_dict()["fps"] == round(1000 / 50.5, 1)
    with pytest.raises(ValueError):
        Stats.from_samples([])


def test_markdown_table_aligns_numbers() -> None:
    table = markdown_table([{"name": "a", "ms": 1.5}, {"name": "b", "ms": 2.25, "extra": "x"}])
    lines = table.splitlines()
    assert lines[0] == "| name | ms | extra |"
    assert lines[1] == "|---|---:|---|"
    assert lines[3] == "| b | 2.25 | x |"


def test_write_results(tmp_path: Path) -> None:
    rows = [{"case": "x", "p50 ms": 1.0}]
    json_path, md_path = write_results("demo", rows, title="Demo", notes="n", results_dir=tmp_path)
    data = json.loads(json_path.read_text())
    assert data["rows"] == rows and data["machine"]["cpus"] >= 1
    assert md_path.read_text().startswith("# Demo")
    assert set(machine_info()) >= {"cpu", "cpus", "python", "time"}
