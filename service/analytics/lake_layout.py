"""The event lake's layout, Parquet schema and manifest (state.json), and where a lake lives."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, text

# Hive-style, one folder per UTC day of the event timestamp:
#
#     <lake>/events/date=YYYY-MM-DD/part-<min id>-<max id>-<token>.parquet
#     <lake>/_tryon/state.json      the manifest: live files, watermark, freshness (as_of)
#     <lake>/_tryon/writer.lock     SQLite deployments: the one-writer file lock
#     <lake>/_tryon/report_hints.json  what large reports needed (DuckEngine), for every process
STATE_FILE = "_tryon/state.json"
HINTS_FILE = "_tryon/report_hints.json"
LOCK_FILE = "_tryon/writer.lock"
EVENTS_DIR = "events"

STRING_COLUMNS = (
    "message_id",
    "event",
    "anonymous_id",
    "user_id",
    "shopper_id",
    "session_id",
    "channel",
    "store_id",
    "kiosk_id",
    "sku",
    "variant",
    "shade",
)
# Timestamps are UTC, stored without a zone (Parquet TIMESTAMP, isAdjustedToUTC=false) so
# that no engine needs a time-zone library to take the UTC day of one.
SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        *[(c, pa.string()) for c in STRING_COLUMNS],
        ("dwell_ms", pa.int64()),
        ("price", pa.decimal128(12, 2)),
        ("currency", pa.string()),
        ("timestamp", pa.timestamp("us")),
        ("received_at", pa.timestamp("us")),
        ("source", pa.string()),
        ("properties", pa.string()),  # the JSON text, as stored
        ("context", pa.string()),
        # Derived at export, with the definitions the SQL reports use:
        ("skin_tone_band", pa.string()),  # Shade Applied: definitions.skin_tone_band
        ("nps_score", pa.float64()),  # Feedback Submitted: properties.score, else .nps
        ("face_width_mm", pa.float64()),  # any event with a numeric properties.face_width_mm
        ("order_skus", pa.list_(pa.string())),  # a multi-line Order Completed's product skus
        # Order Completed: price x quantity per line (definitions.order_line_amounts), one per
        # order_skus entry, or one for a single-sku order (the sku column); 0 without a price.
        ("order_amounts", pa.list_(pa.decimal128(18, 2))),
        # shopper_id as a number (shopper_key below): distinct counts and joins on 64-bit
        # integers instead of strings, 2-4x faster in a columnar engine.
        ("shopper_key", pa.int64()),
    ]
)
# The layout of the files: a manifest written with an older one has its days re-exported
# from SQL before a report reads them (1: order_amounts added; 2: shopper_key added, rows
# sorted by event, sku, variant, shopper_key in row groups of row_group_rows).
LAYOUT = 2
ID_COLUMNS = ("shopper_id", "anonymous_id", "user_id")
SORT_COLUMNS = ("event", "sku", "variant", "shopper_key", "timestamp")


def shopper_key(shopper_id: str) -> int:
    """The lake's number for a shopper id: the first 8 bytes of SHA-256 of its UTF-8 text,
    big-endian, signed (what Trino's `from_big_endian_64(substr(sha256(to_utf8(id)), 1, 8))`
    gives, so a second engine can key the identity links the same way). Two ids share a key
    with probability about n^2 / 2^65: 3e-6 for ten million shoppers."""
    return int.from_bytes(hashlib.sha256(shopper_id.encode()).digest()[:8], "big", signed=True)


def shopper_keys(ids: pa.Array | pa.ChunkedArray) -> pa.Array:
    """shopper_key of every id (null stays null), hashing each distinct id once."""
    enc = pc.dictionary_encode(ids)
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    keys = pa.array([shopper_key(v) for v in enc.dictionary.to_pylist()], pa.int64())
    return pc.take(keys, enc.indices)


class LakeMismatch(RuntimeError):
    """The lake at this location was written from another database."""


@dataclass
class LakeState:
    """The manifest (state.json): what a reader reads and where the next export starts."""

    database: str = ""
    watermark: int = 0  # highest id exported
    settled: int = 0  # every id <= settled is committed or never will be
    checkpoints: list[list[int]] = field(default_factory=list)  # [snapshot xmax, max id]
    as_of: str | None = None  # ISO time: every event committed before it is in the lake
    files: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # day -> files
    dirty_days: list[str] = field(default_factory=list)  # days to re-export from SQL
    layout: int = 0  # LAYOUT of the files (older: every day is re-exported)

    def as_of_dt(self) -> datetime | None:
        return datetime.fromisoformat(self.as_of) if self.as_of else None

    def rows(self, first: str | None = None, last: str | None = None) -> int:
        """Rows in the days [first, last] (ISO; None: open), all days by default."""
        return sum(f["rows"] for d in self.days(first, last) for f in self.files[d])

    def days(self, first: str | None = None, last: str | None = None) -> list[str]:
        """The lake's days within [first, last] (ISO dates; None: open), sorted."""
        return sorted(
            d for d in self.files if (first is None or d >= first) and (last is None or d <= last)
        )

    def bytes(self) -> int:
        return sum(f.get("bytes", 0) for fs in self.files.values() for f in fs)


@dataclass(frozen=True)
class ExportResult:
    rows: int
    files_written: int
    compacted_days: int
    seconds: float
    as_of: datetime


def database_identity(conn: Connection) -> str:
    """Which database a lake belongs to (a second database must not share a lake)."""
    if conn.dialect.name == "postgresql":
        name = conn.execute(text("SELECT current_database()")).scalar()
        url = conn.engine.url
        return f"postgresql:{url.host or ''}:{url.port or 5432}:{name}"
    db = conn.engine.url.database or ""
    return f"sqlite:{os.path.realpath(db) if db and db != ':memory:' else db}"


def lake_location(lake_dir: str, database_url: str) -> str:
    """A URI (s3://, gs://, hdfs://, file://) as given; a relative local path is taken
    beside the SQLite database file (./tryon-lake next to ./tryon.sqlite by default), or in
    the working directory for PostgreSQL."""
    if "://" in lake_dir or os.path.isabs(lake_dir):
        return lake_dir
    if database_url.startswith("sqlite") and "/" in database_url:
        db = database_url.split("///", 1)[-1]
        if db and db != ":memory:":
            return str(Path(db).resolve().parent / lake_dir)
    return str(Path(lake_dir).resolve())


def lake_summary(state: LakeState) -> Mapping[str, Any]:
    return {
        "days": len(state.files),
        "files": sum(len(v) for v in state.files.values()),
        "rows": state.rows(),
        "bytes": state.bytes(),
        "watermark": state.watermark,
        "as_of": state.as_of,
    }
