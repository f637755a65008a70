"""The process's DuckDB database over the event lake: the connection, its views, spilling.

Reports (service.analytics.duck) run through `DuckEngine.query`; this module holds what
outlives a report: the in-memory database (memory limit, threads, no extension downloads),
the `events` view over the manifest's files and the linked ids as `canon`, both rebuilt when
the lake changes, the spill folder, and the retry when a compaction moves a file away.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import logging
import math
import os
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.analytics.lake import EventLake
from service.analytics.lake_layout import SCHEMA, LakeState, shopper_keys
from service.errors import Unavailable
from service.identity.models import ShopperGroup

log = logging.getLogger(__name__)
EMPTY = pa.Table.from_batches([], schema=SCHEMA)


def sql_literal(value: str) -> str:
    """A constant of definitions.py as a SQL string literal (never request input)."""
    return "'" + str(value).replace("'", "''") + "'"


class ReportOverMemory(Unavailable):
    """A DuckDB report ran out of duckdb_memory_limit (after spilling what it could)."""


# quantile_cont keeps every value of a group in memory and cannot spill: past the memory
# limit the dwell percentiles run in up to this many passes over disjoint groups, then (one
# group alone too large) by sorted windows, which spill.
MAX_DWELL_PASSES = 16
SPILL_PREFIX = "tryon-duckdb-"
ORPHAN_AGE_S = 600.0  # untouched this long: no spill in progress, even in another pid space


def remove_orphaned_spill_folders(root: str | None = None, now: float | None = None) -> list[str]:
    """Spill folders left by processes that were killed (SIGKILL, OOM killer: no finalizer
    ran), recognised by the pid in their name no longer running and an old mtime; returns
    the folders removed. The pid test alone could hit a live process in another pid
    namespace sharing /tmp, hence the age as well."""
    root = root or tempfile.gettempdir()
    now = time.time() if now is None else now
    removed = []
    for path in glob.glob(os.path.join(root, f"{SPILL_PREFIX}*-*")):
        pid = os.path.basename(path)[len(SPILL_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or _running(int(pid)):
            continue
        try:
            if now - os.stat(path).st_mtime < ORPHAN_AGE_S:
                continue
        except OSError:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


_UNITS = {"bytes": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}


def _setting_bytes(value: str) -> int:
    """DuckDB's memory_limit as it reports it ('953.6 MiB') in bytes; 1 GB when unreadable."""
    number, _, unit = value.partition(" ")
    try:
        return int(float(number) * _UNITS[unit])
    except (KeyError, ValueError):
        return 10**9


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


class DuckEngine:
    """One in-process DuckDB database (in memory) per process; a cursor per report."""

    def __init__(self, lake: EventLake, *, memory_limit: str = "1GB", threads: int = 2) -> None:
        self.lake = lake
        # Where large aggregates spill past memory_limit (analytics intermediates only, this
        # process's own folder, removed on close).
        remove_orphaned_spill_folders()
        self._spill = tempfile.mkdtemp(prefix=f"{SPILL_PREFIX}{os.getpid()}-")
        # Also removed when the engine is collected or the process exits without close().
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._spill, True)
        self._con = duckdb.connect(
            ":memory:",
            config={
                "memory_limit": memory_limit,
                "threads": threads,
                "temp_directory": self._spill,
                # Nothing may be fetched at run time: core and the built-in Parquet reader.
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
                "preserve_insertion_order": False,
            },
        )
        # Parquet footers are read once per file, not once per report (files never change:
        # a rewrite is a new file). GLOBAL: the report cursors are connections of their own,
        # and a plain SET left them re-reading 90 footers per report (+20 ms at 10M events).
        self._con.execute("SET GLOBAL parquet_metadata_cache = true")
        # fetchall: a result left open on the shared connection blocks every later statement.
        limit = self._con.execute("SELECT current_setting('memory_limit')").fetchall()
        self.memory_bytes = _setting_bytes(str(limit[0][0]) if limit else "")
        self._lock = threading.Lock()
        self._version = ""
        # Per report grouping: the passes its dwell percentiles needed, at how many rows and
        # how much memory; kept in the lake too (report_hints.json), so other processes and
        # replicas start from it.
        self._passes: dict[tuple[str, ...], tuple[int, int, int]] | None = None

    def _learned(self) -> dict[tuple[str, ...], tuple[int, int, int]]:
        if self._passes is None:
            self._passes = {}
            for key, value in self.lake.read_hints().get("dwell_passes", {}).items():
                try:
                    passes, rows, memory = (int(v) for v in value)
                except (TypeError, ValueError):
                    continue  # a malformed hint is ignored, never an error
                self._passes[tuple(key.split(",")) if key else ()] = (passes, rows, memory)
        return self._passes

    def dwell_passes(self, grouping: tuple[str, ...], rows: int) -> int:
        """How many passes a grouping's dwell percentiles should start with over `rows` lake
        rows: 1 (one query) until that grouping ran out of memory here or in another process
        on this lake; then what it needed, scaled with the rows and the memory limit (a
        30-day range needs fewer passes than the 90-day one that taught it), so no later
        request runs out again."""
        learned = self._learned().get(grouping)
        if learned is None:
            return 1
        passes, at_rows, at_memory = learned
        wanted = math.ceil(passes * rows / max(at_rows, 1) * at_memory / max(self.memory_bytes, 1))
        if wanted <= 1:
            return 1
        # past MAX_DWELL_PASSES: sorted windows (2 * MAX_DWELL_PASSES)
        return min(1 << max(wanted - 1, 0).bit_length(), 2 * MAX_DWELL_PASSES)

    def learn_passes(self, grouping: tuple[str, ...], passes: int, rows: int) -> None:
        """Remember what a grouping needed, here and in the lake's hints."""
        self._set_hint(grouping, (passes, rows, self.memory_bytes))

    def forget_passes(self, grouping: tuple[str, ...]) -> None:
        """Start the grouping from one query again (a raised memory limit, tests)."""
        self._set_hint(grouping, None)

    def _set_hint(self, grouping: tuple[str, ...], value: tuple[int, int, int] | None) -> None:
        learned = self._learned()
        if learned.get(grouping) == value:
            return
        if value is None:
            learned.pop(grouping, None)
        else:
            learned[grouping] = value
        hints = self.lake.read_hints()  # merge with what other processes learned meanwhile
        known = hints.get("dwell_passes")
        merged = dict(known) if isinstance(known, dict) else {}
        key = ",".join(grouping)
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = list(value)
        try:
            self.lake.write_hints({**hints, "dwell_passes": merged})
        except OSError as exc:  # read-only lake, object store hiccup: stays in this process
            log.warning("report hints not written to the lake: %s", exc)

    def close(self) -> None:
        self._con.close()
        self._cleanup()

    @contextlib.contextmanager
    def _cursor(self, session: Session, state: LakeState) -> Iterator[Any]:
        with self._lock:  # cursor() and the views on the shared connection
            self._bind(session, state)
            cur = self._con.cursor()
        try:
            yield cur
        finally:
            cur.close()

    def _bind(self, session: Session, state: LakeState) -> None:
        """`events` and `canon` for this manifest version, made once per version: a view
        over the manifest's files (footers cached by DuckDB) and the linked ids copied from
        the SQL store. Reports read them through every cursor; a version lives until the
        lake changes (an export, a compaction, an erasure: at most lake_max_staleness_s)."""
        files = self.lake.live_files(state)
        version = hashlib.sha256("\n".join([state.as_of or "", *files]).encode()).hexdigest()
        if version == self._version:
            return
        con = self._con
        if not files:
            # A registered Arrow object is visible to this connection only, not to the report
            # cursors: materialise the (empty) schema as a table they all see.
            con.register("lake_empty_arrow", EMPTY)
            con.execute("CREATE OR REPLACE TABLE lake_empty AS SELECT * FROM lake_empty_arrow")
            con.unregister("lake_empty_arrow")
            con.execute("CREATE OR REPLACE VIEW events AS SELECT * FROM lake_empty")
        elif self.lake.local:
            listed = ", ".join(sql_literal(p) for p in files)
            con.execute(f"CREATE OR REPLACE VIEW events AS SELECT * FROM read_parquet([{listed}])")
        else:  # an object store through pyarrow's filesystems (no DuckDB extension)
            dataset = ds.dataset(files, filesystem=self.lake.fs, format="parquet", schema=SCHEMA)
            con.register("lake_remote", dataset)
            con.execute("CREATE OR REPLACE VIEW events AS SELECT * FROM lake_remote")
        groups = session.execute(select(ShopperGroup.shopper_id, ShopperGroup.canonical_id)).all()
        # Keyed like the lake's shopper_key column: joins and distinct counts on integers.
        canon = pa.table(
            {
                "key": shopper_keys(pa.array([g[0] for g in groups], pa.string())),
                "canonical": shopper_keys(pa.array([g[1] for g in groups], pa.string())),
            }
        )
        con.register("canon_arrow", canon)
        con.execute("CREATE OR REPLACE TABLE canon AS SELECT * FROM canon_arrow")
        con.unregister("canon_arrow")
        self._version = version
        self._passes = None  # re-read the lake's hints: another process may have learned some

    def query(
        self,
        session: Session,
        state: LakeState,
        sql: str,
        params: Sequence[Any],
        days: tuple[str | None, str | None] = (None, None),
    ) -> list[tuple[Any, ...]]:
        """Run one report query over the days [first, last] of `days` (None: open); a file
        deleted under it by a compaction or an erasure (the manifest moved on) is retried
        once with the current manifest."""
        for attempt in (0, 1):
            try:
                with self._cursor(session, state) as cur:
                    text = sql.replace("__EVENTS__", self._source(state, *days))
                    return list(cur.execute(text, list(params)).fetchall())
            except duckdb.IOException:
                if attempt:
                    raise
                state = self.lake.read_state()
            except duckdb.OutOfMemoryException as exc:
                log.warning("analytics report over duckdb_memory_limit: %s", exc)
                raise ReportOverMemory(
                    "this report needs more memory than the analytics engine may use "
                    "(TRYON_DUCKDB_MEMORY_LIMIT); narrow the date range or the grouping"
                ) from exc
        raise AssertionError("unreachable")

    def _source(self, state: LakeState, first: str | None, last: str | None) -> str:
        """The files of the days a report can touch (partition pruning from the manifest;
        DuckDB then skips row groups by their statistics)."""
        if not self.lake.local:
            return "events"
        days = state.days(first, last)
        if len(days) == len(state.files):
            return "events"
        if not days:
            return "(SELECT * FROM events WHERE FALSE)"
        files = [self.lake.file_path(d, f["name"]) for d in days for f in state.files[d]]
        return "read_parquet([" + ", ".join(sql_literal(p) for p in files) + "])"
