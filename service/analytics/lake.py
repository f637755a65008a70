"""The event lake: the events table as day-partitioned Parquet any columnar engine can read.

Layout (Hive-style, one folder per UTC day of the event timestamp):

    <lake>/events/date=YYYY-MM-DD/part-<min id>-<max id>-<token>.parquet
    <lake>/_tryon/state.json      the manifest: live files, watermark, freshness (as_of)
    <lake>/_tryon/writer.lock     SQLite deployments: the one-writer file lock

Export is incremental by a watermark on `events.id`, under one writer lock for every replica
and worker process (PostgreSQL: an advisory lock; SQLite: a file lock). Idempotent: a row
whose id is already in the lake is never written twice, a re-exported day replaces the
day's files, and a late event (old timestamp, new id) lands in its own day's partition.

On PostgreSQL ids are taken at insert and become visible at commit, so an id below the
watermark can still appear later. Each export records (snapshot xmax, highest id read);
once every transaction that was running then has finished (the current snapshot's xmin has
passed that xmax), the ids up to it are settled. Rows above the settled mark are re-read and
de-duplicated against the lake's ids, so a late commit is never skipped.

Readers (service.analytics.duck) read the manifest's file list, never a directory listing,
so a compaction or an erasure (write new files, swap the manifest, then delete the old
files) is never seen half-done; a reader that listed a file just deleted retries once.
Erasure and retention rewrite or drop files: the old ones are deleted, nothing is kept as a
tombstone. Derived columns (skin_tone_band, nps_score, face_width_mm, order_skus) are the
definitions of service.analytics.definitions applied once at export, so no report needs a
JSON function (DuckDB's JSON support is an extension) and every engine reads the same values.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import secrets
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from sqlalchemy import Connection, Engine, Text, cast, event, func, select, text
from sqlalchemy.orm import Session, SessionTransaction

from service.analytics.definitions import (
    FEEDBACK_EVENT,
    ORDER_EVENT,
    SHADE_EVENT,
    skin_tone_band,
)
from service.touchpoints.models import Event

log = logging.getLogger(__name__)

# pg_advisory_lock key of the one lake writer (any 64-bit constant; "tryon-lake").
PG_LOCK_KEY = 0x7472796F6E6C616B
STATE_FILE = "_tryon/state.json"
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
    ]
)
ID_COLUMNS = ("shopper_id", "anonymous_id", "user_id")


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

    def as_of_dt(self) -> datetime | None:
        return datetime.fromisoformat(self.as_of) if self.as_of else None

    def rows(self) -> int:
        return sum(f["rows"] for fs in self.files.values() for f in fs)

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


class EventLake:
    """One lake location. Thread-safe; any number of processes may share the location."""

    def __init__(
        self,
        location: str,
        *,
        export_chunk_rows: int = 200_000,
        compact_min_files: int = 8,
        row_group_rows: int = 128_000,
    ) -> None:
        self.location = location
        if "://" in location and not location.startswith("file://"):
            fs, root = pafs.FileSystem.from_uri(location)
            self.fs: pafs.FileSystem = fs
            self.root = root.rstrip("/")
            self.local = False
        else:
            self.fs = pafs.LocalFileSystem()
            self.root = location.removeprefix("file://").rstrip("/")
            self.local = True
        self.export_chunk_rows = export_chunk_rows
        self.compact_min_files = compact_min_files
        self.row_group_rows = row_group_rows
        self._local_lock = threading.Lock()

    # ---- paths, manifest -------------------------------------------------------------

    def path(self, rel: str) -> str:
        return f"{self.root}/{rel}"

    def file_path(self, day: str, name: str) -> str:
        return self.path(f"{EVENTS_DIR}/date={day}/{name}")

    def exists(self) -> bool:
        return self.fs.get_file_info(self.path(STATE_FILE)).type == pafs.FileType.File

    def read_state(self) -> LakeState:
        try:
            with self.fs.open_input_stream(self.path(STATE_FILE)) as f:
                raw = json.loads(f.read())
        except (FileNotFoundError, OSError):
            return LakeState()
        return LakeState(**raw)

    def _write_state(self, state: LakeState) -> None:
        body = json.dumps(state.__dict__, separators=(",", ":")).encode()
        self.fs.create_dir(self.path("_tryon"), recursive=True)
        final = self.path(STATE_FILE)
        if self.local:  # write then rename: a reader sees the old or the new manifest
            tmp = f"{final}.{secrets.token_hex(4)}.tmp"
            with self.fs.open_output_stream(tmp) as f:
                f.write(body)
            os.replace(tmp, final)
        else:  # an object store's PUT is atomic
            with self.fs.open_output_stream(final) as f:
                f.write(body)

    def live_files(self, state: LakeState | None = None) -> list[str]:
        st = state or self.read_state()
        return [self.file_path(day, f["name"]) for day in sorted(st.files) for f in st.files[day]]

    def disk_files(self) -> list[str]:
        """Every file under the lake (tests: nothing is left behind)."""
        sel = pafs.FileSelector(self.root, recursive=True, allow_not_found=True)
        return [i.path for i in self.fs.get_file_info(sel) if i.type == pafs.FileType.File]

    # ---- the one writer --------------------------------------------------------------

    def _lock_path(self) -> str:
        if self.local:
            os.makedirs(self.path("_tryon"), exist_ok=True)
            return self.path(LOCK_FILE)
        digest = hashlib.sha256(self.location.encode()).hexdigest()[:16]
        return os.path.join(tempfile.gettempdir(), f"tryon-lake-{digest}.lock")

    def _file_lock(self) -> Any:
        fd = os.open(self._lock_path(), os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    @contextlib.contextmanager
    def writer(self, engine: Engine) -> Iterator[None]:
        """Hold the lake's one-writer lock (every replica and worker process): a PostgreSQL
        session advisory lock on its own connection, or a file lock for SQLite."""
        with self._local_lock:
            if engine.dialect.name == "postgresql":
                with engine.connect() as conn:
                    conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": PG_LOCK_KEY})
                    conn.commit()
                    try:
                        yield
                    finally:
                        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PG_LOCK_KEY})
                        conn.commit()
            else:
                fd = self._file_lock()
                try:
                    yield
                finally:
                    os.close(fd)

    def _lock_for_transaction(self, session: Session, on_end: Any = None) -> None:
        """Take the writer lock until `session`'s transaction ends (erasure, retention): an
        export cannot start before those deletes commit, so it never re-reads erased rows."""
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_LOCK_KEY})
            if on_end is not None:
                _after_root_end(session, lambda committed: on_end(committed))
            return
        fd = self._file_lock()

        def release(committed: bool) -> None:
            try:
                if on_end is not None:
                    on_end(committed)
            finally:
                os.close(fd)

        _after_root_end(session, release)

    # ---- export ----------------------------------------------------------------------

    def export(self, engine: Engine, *, compact: bool = True) -> ExportResult:
        """Bring the lake up to date with the events table (incremental, idempotent)."""
        t_start = time.perf_counter()
        with self.writer(engine):
            return self._export_locked(engine, compact=compact, t_start=t_start)

    def ensure_fresh(self, engine: Engine, max_staleness_s: float) -> LakeState:
        """The manifest, exported first when its data is older than max_staleness_s."""
        state = self.read_state()
        as_of = state.as_of_dt()
        if as_of is not None and _age_s(as_of) <= max_staleness_s and not state.dirty_days:
            return state
        with self.writer(engine):
            state = self.read_state()  # another process may have exported meanwhile
            as_of = state.as_of_dt()
            if as_of is None or _age_s(as_of) > max_staleness_s or state.dirty_days:
                self._export_locked(engine, compact=True, t_start=time.perf_counter())
                state = self.read_state()
        return state

    def _export_locked(self, engine: Engine, *, compact: bool, t_start: float) -> ExportResult:
        state = self.read_state()
        pg = engine.dialect.name == "postgresql"
        rows_out = files_out = 0
        touched: set[str] = set()
        added: dict[str, int] = {}  # files this export wrote per day
        # REPEATABLE READ on PostgreSQL: the snapshot numbers and the rows read agree.
        opts = {"isolation_level": "REPEATABLE READ"} if pg else {}
        with engine.connect().execution_options(**opts) as conn:
            ident = database_identity(conn)
            if state.database and state.database != ident:
                raise LakeMismatch(
                    f"the lake at {self.location} belongs to {state.database}, not {ident}; "
                    "set TRYON_LAKE_DIR to a folder of this database's own"
                )
            state.database = ident
            as_of = datetime.now(UTC)
            xmin = xmax = 0
            if pg:
                xmin, xmax = (
                    int(v)
                    for v in conn.execute(
                        text(
                            "SELECT pg_snapshot_xmin(s)::text, pg_snapshot_xmax(s)::text "
                            "FROM (SELECT pg_current_snapshot() AS s) q"
                        )
                    ).one()
                )
            else:
                # SQLite: writers are serialized, so ids commit in order; an erasure or
                # purge of the newest rows lets SQLite hand their ids out again.
                top = conn.execute(select(func.max(Event.id))).scalar() or 0
                if top < state.watermark:
                    state.watermark = state.settled = top
                    state.checkpoints = []
            obsolete: list[str] = []
            if state.dirty_days:
                for day in list(state.dirty_days):
                    n, old = self._rebuild_day(conn, state, day)
                    rows_out += n
                    obsolete += old
                    touched.add(day)
                state.dirty_days = []
            max_id = state.watermark
            for batch in _read_batches(conn, state.settled, self.export_chunk_rows):
                ids = batch.column("id")
                max_id = max(max_id, pc.max(ids).as_py())
                if state.watermark > state.settled:
                    batch = self._drop_exported(state, batch)
                for day, part in _split_days(batch):
                    self._add_file(state, day, part)
                    rows_out += part.num_rows
                    files_out += 1
                    added[day] = added.get(day, 0) + 1
                    touched.add(day)
            if pg:
                state.checkpoints.append([xmax, max_id])
                settled = [m for x, m in state.checkpoints if x <= xmin]
                state.settled = max([state.settled, *settled])
                state.checkpoints = [c for c in state.checkpoints if c[1] > state.settled]
            else:
                state.settled = max_id
            state.watermark = max_id
            state.as_of = as_of.isoformat()
        compacted = 0
        if compact:
            # A day past compact_min_files, or one this export wrote several files to (a
            # large export or back-fill): one file per day again.
            for day in sorted(touched):
                n_files = len(state.files.get(day, []))
                if n_files >= self.compact_min_files or (added.get(day, 0) > 1 and n_files > 1):
                    obsolete += self._compact_day(state, day)
                    compacted += 1
        self._write_state(state)
        self._delete(obsolete)
        return ExportResult(rows_out, files_out, compacted, time.perf_counter() - t_start, as_of)

    def _drop_exported(self, state: LakeState, batch: pa.Table) -> pa.Table:
        """Rows re-read above the settled mark whose id the lake already holds."""
        ids = batch.column("id")
        maybe = pc.less_equal(ids, state.watermark)
        if not pc.any(maybe).as_py():
            return batch
        lo = pc.min(pc.filter(ids, maybe)).as_py()
        have: list[pa.Array] = []
        for day, files in state.files.items():
            for f in files:
                if f["max_id"] >= lo and f["min_id"] <= state.watermark:
                    t = pq.read_table(
                        self.file_path(day, f["name"]), columns=["id"], filesystem=self.fs
                    )
                    have.append(t.column("id").combine_chunks())
        if not have:
            return batch
        known = pa.concat_arrays(have)
        return batch.filter(pc.invert(pc.is_in(ids, value_set=known)))

    def _rebuild_day(self, conn: Connection, state: LakeState, day: str) -> tuple[int, list[str]]:
        """Re-export one day from the SQL store (replaces the day's files; repair after an
        erasure whose transaction rolled back, or any re-export of a range)."""
        start = datetime.fromisoformat(day).replace(tzinfo=UTC)
        stmt = _select_rows().where(
            Event.timestamp >= start,
            Event.timestamp < start + timedelta(days=1),
            Event.id <= state.watermark,
        )
        tables = [_to_table(rows) for rows in _chunks(conn.execute(stmt), 200_000)]
        old = state.files.pop(day, [])
        n = 0
        if tables:
            table = pa.concat_tables(tables)
            if table.num_rows:
                self._add_file(state, day, table)
                n = table.num_rows
        return n, [self.file_path(day, f["name"]) for f in old]

    def rebuild(self, engine: Engine, days: Iterable[date] | None = None) -> ExportResult:
        """Re-export the given days (all of them by default) from the SQL store."""
        t0 = time.perf_counter()
        with self.writer(engine):
            state = self.read_state()
            wanted = [d.isoformat() for d in days] if days is not None else sorted(state.files)
            state.dirty_days = sorted(set(state.dirty_days) | set(wanted))
            self._write_state(state)
            return self._export_locked(engine, compact=True, t_start=t0)

    # ---- files -----------------------------------------------------------------------

    def _add_file(self, state: LakeState, day: str, table: pa.Table) -> None:
        table = table.sort_by([("event", "ascending"), ("timestamp", "ascending")])
        ids = table.column("id")
        lo, hi = pc.min(ids).as_py(), pc.max(ids).as_py()
        name = f"part-{lo:012d}-{hi:012d}-{secrets.token_hex(4)}.parquet"
        final = self.file_path(day, name)
        self.fs.create_dir(self.path(f"{EVENTS_DIR}/date={day}"), recursive=True)
        # Local: written under a name no reader globs, then renamed into place.
        target = f"{final}.tmp" if self.local else final
        pq.write_table(
            table,
            target,
            filesystem=self.fs,
            compression="zstd",
            row_group_size=self.row_group_rows,
        )
        if self.local:
            os.replace(target, final)
        size = self.fs.get_file_info(final).size or 0
        state.files.setdefault(day, []).append(
            {"name": name, "rows": table.num_rows, "min_id": lo, "max_id": hi, "bytes": size}
        )

    def _compact_day(self, state: LakeState, day: str) -> list[str]:
        """Merge a day's files into one; returns the old paths (delete after the swap)."""
        old = state.files.get(day, [])
        paths = [self.file_path(day, f["name"]) for f in old]
        table = pq.read_table(paths, filesystem=self.fs, schema=SCHEMA) if paths else None
        state.files[day] = []
        if table is not None and table.num_rows:
            self._add_file(state, day, table)
        else:
            del state.files[day]
        return paths

    def compact(self, engine: Engine, min_files: int = 2) -> int:
        """Merge every day with at least min_files files (the export does it past
        compact_min_files for the days it touched)."""
        with self.writer(engine):
            state = self.read_state()
            obsolete: list[str] = []
            days = [d for d, fs in state.files.items() if len(fs) >= min_files]
            for day in days:
                obsolete += self._compact_day(state, day)
            self._write_state(state)
            self._delete(obsolete)
            return len(days)

    def _delete(self, paths: Sequence[str]) -> None:
        for p in paths:
            with contextlib.suppress(FileNotFoundError):
                self.fs.delete_file(p)
        self._prune_empty_dirs()

    def _prune_empty_dirs(self) -> None:
        base = self.path(EVENTS_DIR)
        sel = pafs.FileSelector(base, recursive=False, allow_not_found=True)
        for info in self.fs.get_file_info(sel):
            if info.type != pafs.FileType.Directory:
                continue
            inner = self.fs.get_file_info(pafs.FileSelector(info.path, allow_not_found=True))
            if not inner:
                with contextlib.suppress(OSError):
                    self.fs.delete_dir(info.path)

    # ---- privacy ---------------------------------------------------------------------

    def erase(self, session: Session, shopper_ids: Sequence[str]) -> dict[str, int]:
        """Rewrite the lake files holding any of these ids without their rows; the old files
        are deleted. Holds the writer lock until the erasure's transaction ends; if that
        transaction rolls back, the rewritten days are re-exported from SQL by the next
        export."""
        if not shopper_ids or not self.exists():
            return {"lake_rows": 0}
        touched: list[str] = []
        self._lock_for_transaction(
            session, on_end=lambda committed: None if committed else self._mark_dirty(touched)
        )
        state = self.read_state()
        value_set = pa.array(list(shopper_ids), pa.string())
        hit = None
        for col in ID_COLUMNS:
            cond = pc.field(col).isin(value_set)
            hit = cond if hit is None else (hit | cond)
        assert hit is not None
        removed = 0
        obsolete: list[str] = []
        for day in sorted(state.files):
            keep: list[dict[str, Any]] = []
            for f in list(state.files[day]):
                path = self.file_path(day, f["name"])
                frag = ds.dataset(path, filesystem=self.fs, format="parquet", schema=SCHEMA)
                n = frag.count_rows(filter=hit)
                if not n:
                    keep.append(f)
                    continue
                table = frag.to_table(filter=~hit)
                removed += n
                obsolete.append(path)
                touched.append(day)
                if table.num_rows:
                    tmp_state = LakeState(files={})
                    self._add_file(tmp_state, day, table)
                    keep += tmp_state.files[day]
            if keep:
                state.files[day] = keep
            else:
                del state.files[day]
        if removed:
            self._clamp_sqlite(session, state)
            self._write_state(state)
            self._delete(obsolete)
        return {"lake_rows": removed}

    def purge(self, session: Session, cutoff: datetime, _now: datetime) -> dict[str, int]:
        """Retention: drop the days before cutoff's day, rewrite cutoff's own day without the
        rows before cutoff (as the events purge deletes them)."""
        if not self.exists():
            return {"lake_rows": 0}
        self._lock_for_transaction(session)
        state = self.read_state()
        cut = cutoff.astimezone(UTC)
        cut_day = cut.date().isoformat()
        removed = 0
        obsolete: list[str] = []
        for day in sorted(state.files):
            if day > cut_day:
                break
            files = state.files[day]
            paths = [self.file_path(day, f["name"]) for f in files]
            if day < cut_day:
                removed += sum(f["rows"] for f in files)
                obsolete += paths
                del state.files[day]
                continue
            table = pq.read_table(paths, filesystem=self.fs, schema=SCHEMA)
            keep = pc.greater_equal(
                table.column("timestamp"), pa.scalar(_naive(cut), SCHEMA.field("timestamp").type)
            )
            kept = table.filter(keep)
            if kept.num_rows == table.num_rows:
                continue
            removed += table.num_rows - kept.num_rows
            obsolete += paths
            state.files[day] = []
            if kept.num_rows:
                self._add_file(state, day, kept)
            else:
                del state.files[day]
        if removed:
            self._clamp_sqlite(session, state)
            self._write_state(state)
            self._delete(obsolete)
        return {"lake_rows": removed}

    def _clamp_sqlite(self, session: Session, state: LakeState) -> None:
        if session.get_bind().dialect.name == "postgresql":
            return
        top = session.execute(select(func.max(Event.id))).scalar() or 0
        if top < state.watermark:  # SQLite will hand the deleted top ids out again
            state.watermark = state.settled = top

    def _mark_dirty(self, days: Sequence[str]) -> None:
        if not days:
            return
        log.warning("erasure rolled back after the lake was rewritten: re-exporting %s", days)
        state = self.read_state()
        state.dirty_days = sorted(set(state.dirty_days) | set(days))
        self._write_state(state)


# ---- rows from SQL to Arrow ------------------------------------------------------------


def _select_rows() -> Any:
    return select(
        Event.id,
        *[getattr(Event, c) for c in STRING_COLUMNS],
        Event.dwell_ms,
        Event.price,
        Event.currency,
        Event.timestamp,
        Event.received_at,
        Event.source,
        cast(Event.properties, Text).label("properties"),
        cast(Event.context, Text).label("context"),
    )


def _read_batches(conn: Connection, after_id: int, chunk: int) -> Iterator[pa.Table]:
    stmt = _select_rows().where(Event.id > after_id).order_by(Event.id)
    result = conn.execution_options(stream_results=True, yield_per=chunk).execute(stmt)
    for rows in _chunks(result, chunk):
        yield _to_table(rows)


def _chunks(result: Any, n: int) -> Iterator[list[Any]]:
    while True:
        rows = result.fetchmany(n)
        if not rows:
            return
        yield rows


def _naive(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def derived(event_name: str, sku: str | None, props_text: str | None) -> tuple[Any, ...]:
    """(skin_tone_band, nps_score, face_width_mm, order_skus) of one event: the report
    definitions (definitions.py; the SQL in sql.py and fitgap.py) applied once."""
    band = nps = width = skus = None
    needs = (
        event_name in (SHADE_EVENT, FEEDBACK_EVENT)
        or (event_name == ORDER_EVENT and sku is None)
        or (props_text is not None and "face_width_mm" in props_text)
    )
    if not needs or not props_text:
        return (_band_without_props(event_name), None, None, None)
    try:
        props = json.loads(props_text)
    except ValueError:
        props = {}
    if not isinstance(props, dict):
        props = {}
    if event_name == SHADE_EVENT:
        band = skin_tone_band(props)
    if event_name == FEEDBACK_EVENT:
        score = _number(props.get("score"))
        nps = score if score is not None else _number(props.get("nps"))
    width = _number(props.get("face_width_mm"))
    if event_name == ORDER_EVENT and sku is None and isinstance(props.get("products"), list):
        skus = [
            str(line["sku"])
            for line in props["products"]
            if isinstance(line, dict) and line.get("sku") is not None
        ]
    return band, nps, width, skus


def _band_without_props(event_name: str) -> str | None:
    return skin_tone_band({}) if event_name == SHADE_EVENT else None


def _to_table(rows: Sequence[Any]) -> pa.Table:
    cols: dict[str, list[Any]] = defaultdict(list)
    names = ["id", *STRING_COLUMNS, "dwell_ms", "price", "currency"]
    for r in rows:
        m = r._mapping if hasattr(r, "_mapping") else r
        for n in names:
            cols[n].append(m[n])
        cols["timestamp"].append(_naive(m["timestamp"]))
        ra = m["received_at"]
        cols["received_at"].append(_naive(ra) if ra is not None else None)
        cols["source"].append(m["source"])
        props = m["properties"]
        cols["properties"].append(props)
        cols["context"].append(m["context"])
        band, nps, width, skus = derived(m["event"], m["sku"], props)
        cols["skin_tone_band"].append(band)
        cols["nps_score"].append(nps)
        cols["face_width_mm"].append(width)
        cols["order_skus"].append(skus)
    return pa.table({f.name: pa.array(cols[f.name], f.type) for f in SCHEMA}, schema=SCHEMA)


def _split_days(table: pa.Table) -> Iterator[tuple[str, pa.Table]]:
    days = pc.strftime(table.column("timestamp"), format="%Y-%m-%d")
    for day in pc.unique(days).to_pylist():
        yield day, table.filter(pc.equal(days, day))


def _age_s(as_of: datetime) -> float:
    return (datetime.now(UTC) - as_of).total_seconds()


def _after_root_end(session: Session, fn: Any) -> None:
    """Call fn(committed) once, when the session's outermost transaction ends."""
    done = {"v": False}

    def on_commit(sess: Session) -> None:
        if not done["v"]:
            done["v"] = True
            fn(True)

    def on_end(sess: Session, trans: SessionTransaction) -> None:
        if trans.parent is None and not done["v"]:
            done["v"] = True
            fn(False)

    event.listen(session, "after_commit", on_commit, once=True)
    event.listen(session, "after_transaction_end", on_end)


def lake_summary(state: LakeState) -> Mapping[str, Any]:
    return {
        "days": len(state.files),
        "files": sum(len(v) for v in state.files.values()),
        "rows": state.rows(),
        "bytes": state.bytes(),
        "watermark": state.watermark,
        "as_of": state.as_of,
    }
