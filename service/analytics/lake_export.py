"""Export into the event lake: incremental by watermark, de-duplicated, then compacted."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import Connection, Engine, func, select, text

from service.analytics.lake_layout import (
    LAYOUT,
    ExportResult,
    LakeMismatch,
    LakeState,
    database_identity,
)
from service.analytics.lake_rows import chunks, read_batches, select_rows, split_days, to_table
from service.analytics.lake_store import LakeStore
from service.touchpoints.models import Event


class LakeExporter(LakeStore):
    """Brings the lake up to date with the events table, under the one writer lock.

    Incremental by a watermark on `events.id`, under one writer lock for every replica and
    worker process (PostgreSQL: an advisory lock; SQLite: a file lock). Idempotent: a row
    whose id is already in the lake is never written twice, a re-exported day replaces the
    day's files, and a late event (old timestamp, new id) lands in its own day's partition.

    On PostgreSQL ids are taken at insert and become visible at commit, so an id below the
    watermark can still appear later. Each export records (snapshot xmax, highest id read);
    once every transaction that was running then has finished (the current snapshot's xmin
    has passed that xmax), the ids up to it are settled. Rows above the settled mark are
    re-read and de-duplicated against the lake's ids, so a late commit is never skipped.
    """

    def export(self, engine: Engine, *, compact: bool = True) -> ExportResult:
        """Bring the lake up to date with the events table (incremental, idempotent)."""
        t_start = time.perf_counter()
        with self.writer(engine):
            return self._export_locked(engine, compact=compact, t_start=t_start)

    def ensure_fresh(self, engine: Engine, max_staleness_s: float) -> LakeState:
        """The manifest, exported first when its data is older than max_staleness_s."""
        state = self.read_state()
        as_of = state.as_of_dt()
        if (
            as_of is not None
            and _age_s(as_of) <= max_staleness_s
            and not state.dirty_days
            and state.layout >= LAYOUT
        ):
            return state
        with self.writer(engine):
            state = self.read_state()  # another process may have exported meanwhile
            as_of = state.as_of_dt()
            if (
                as_of is None
                or _age_s(as_of) > max_staleness_s
                or state.dirty_days
                or state.layout < LAYOUT
            ):
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
            if state.layout < LAYOUT:  # files of an older layout: re-export every day
                state.dirty_days = sorted(set(state.dirty_days) | set(state.files))
                state.layout = LAYOUT
            if state.dirty_days:
                for day in list(state.dirty_days):
                    n, old = self._rebuild_day(conn, state, day)
                    rows_out += n
                    obsolete += old
                    touched.add(day)
                state.dirty_days = []
            max_id = state.watermark
            for batch in read_batches(conn, state.settled, self.export_chunk_rows):
                ids = batch.column("id")
                max_id = max(max_id, pc.max(ids).as_py())
                if state.watermark > state.settled:
                    batch = self._drop_exported(state, batch)
                for day, part in split_days(batch):
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
        stmt = select_rows().where(
            Event.timestamp >= start,
            Event.timestamp < start + timedelta(days=1),
            Event.id <= state.watermark,
        )
        tables = [to_table(rows) for rows in chunks(conn.execute(stmt), 200_000)]
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


def _age_s(as_of: datetime) -> float:
    return (datetime.now(UTC) - as_of).total_seconds()
