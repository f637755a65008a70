"""`python -m benchmarks.report`: gather benchmarks/results/*.md into benchmarks/RESULTS.md."""

from __future__ import annotations

from pathlib import Path

from benchmarks.common import RESULTS, machine_info
from benchmarks.plots import all_plots

# Order and one line of context per benchmark; the command is `python -m benchmarks.NAME`
# unless COMMANDS says otherwise.
SECTIONS = {
    "frame_latency": "End to end: ours vs the landmarks-only floor vs the newcomer reference",
    "aa_quality": "Anti-aliasing per device: cost and difference from 8x8 supersampling",
    "codec": "JPEG decode/encode: OpenCV vs libjpeg-turbo, DCT downscaling",
    "iris_refinement": "Iris refinement every Nth frame: saving vs PD and placement",
    "vision_core": "Landmark stage vs the whole vision core (issue: foundation)",
    "landmark_backends": "MediaPipe graph vs ONNX Runtime landmarks, 1-64 streams (GPU rows empty)",
    "render_glasses": "Glasses render + composite vs the landmark step",
    "lipstick": "Lipstick mask + paint vs the landmark step",
    "stream_roundtrip": "WebSocket round trip, 1/2/4/8 streams, 1 vs 2 worker processes",
    "ingest": "Touchpoint ingestion (SYNTHETIC events)",
    "analytics_load": "Analytics and offers latency at 1M SYNTHETIC events",
    "analytics_lake": "Event lake + DuckDB vs the SQL store at 1M SYNTHETIC events",
    "analytics_lake_10m": "Event lake + DuckDB vs the SQL store at 10M SYNTHETIC events",
    "analytics_lake_100m": "Event lake + DuckDB alone at 100M SYNTHETIC events",
    "analytics_bounds_1m": "Lower bounds of the slow lake reports at 1M SYNTHETIC events",
    "analytics_bounds_10m": "Lower bounds of the slow lake reports at 10M SYNTHETIC events",
    "analytics_bounds_100m": "Lower bounds of the slow lake reports at 100M SYNTHETIC events",
    "offers_quality": "Offer ranking quality on SYNTHETIC shoppers",
    "stream_soak": "Server RSS over 1,000 stream sessions (kiosks run for weeks)",
}
COMMANDS = {
    "analytics_lake_10m": "python -m benchmarks.analytics_lake --events 10000000",
    "analytics_lake_100m": "python -m benchmarks.analytics_lake --events 100000000 --backend none",
    "analytics_bounds_1m": "python -m benchmarks.analytics_bounds --events 1000000",
    "analytics_bounds_10m": "python -m benchmarks.analytics_bounds --events 10000000",
    "analytics_bounds_100m": "python -m benchmarks.analytics_bounds --events 100000000 --runs 3",
}
OUT = Path(__file__).resolve().parent / "RESULTS.md"


def _demote(markdown: str) -> str:
    """Each result file starts with its own '# title': nest it under the section."""
    return "\n".join("##" + line if line.startswith("# ") else line for line in
                     markdown.strip().splitlines())


def build(results_dir: Path = RESULTS, plots: list[Path] | None = None) -> str:
    m = machine_info()
    parts = [
        "# Benchmark results",
        "",
        "Written by `python -m benchmarks.report` from `benchmarks/results/*.md` (each saved by",
        "its own script; `make bench` runs them all). Medians and p95 come from one run; ratios",
        "compare against a baseline measured in the same run. Machine: the 2-core CPU-only box",
        "the project is developed and tested on (llvmpipe for OpenGL); no GPU was available.",
        "",
        f"Report written on: {m['cpu']}, {m['cpus']} CPUs, {m['platform']}, Python "
        f"{m['python']}, load average {m['load_avg_1m']} (1 min) at {m['time']}; each table "
        "names the load it was measured under.",
        "",
    ]
    for png in plots or []:
        parts += [f"![{png.stem}](results/{png.name})", ""]
    # Hand-kept comparisons across changes (the "before" side cannot be re-run from main).
    notes = results_dir / "before_after.md"
    if notes.is_file():
        parts += [_demote(notes.read_text()), ""]
    for name, what in SECTIONS.items():
        md = results_dir / f"{name}.md"
        cmd = COMMANDS.get(name, f"python -m benchmarks.{name}")
        parts += [f"## {name}: {what}", "", f"Command: `{cmd}`", ""]
        parts += [_demote(md.read_text()) if md.is_file() else "_not run yet_", ""]
    return "\n".join(parts)


def main() -> None:
    OUT.write_text(build(plots=all_plots()))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
