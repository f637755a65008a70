"""Report rows as CSV, JSON Lines or Parquet (pyarrow) bytes, with their media types."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any, Literal

ExportFormat = Literal["csv", "jsonl", "parquet"]
MEDIA_TYPES: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
}


def _flat(value: Any) -> Any:
    # Lists (e.g. fitting_skus) become one cell; CSV has no nested values.
    return ";".join(map(str, value)) if isinstance(value, list | tuple) else value


def to_csv(rows: Sequence[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    fields = list(dict.fromkeys(k for r in rows for k in r))
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _flat(v) for k, v in r.items()})
    return buf.getvalue().encode("utf-8")


def to_jsonl(rows: Sequence[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, default=str, separators=(",", ":")) + "\n" for r in rows).encode()


def to_parquet(rows: Sequence[dict[str, Any]]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    fields = list(dict.fromkeys(k for r in rows for k in r))
    table = (
        pa.Table.from_pylist([{k: r.get(k) for k in fields} for r in rows])
        if rows
        else pa.table({})
    )
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def export(rows: Sequence[dict[str, Any]], fmt: ExportFormat) -> tuple[bytes, str]:
    writer = {"csv": to_csv, "jsonl": to_jsonl, "parquet": to_parquet}[fmt]
    return writer(rows), MEDIA_TYPES[fmt]
