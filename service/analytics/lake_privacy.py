"""Erasure and retention in the event lake: files rewritten without the rows, old ones deleted."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.analytics.lake_layout import ID_COLUMNS, SCHEMA, LakeState
from service.analytics.lake_rows import naive_utc
from service.analytics.lake_store import LakeStore
from service.touchpoints.models import Event

log = logging.getLogger(__name__)


class LakePrivacy(LakeStore):
    """Erasure and retention: the files holding the rows are rewritten without them.

    A new file is written, the manifest swapped, then the old files deleted, so a reader
    (which reads the manifest's file list, never a directory listing) never sees it half-done;
    nothing is kept as a tombstone.
    """

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
        return self._commit_rewrite(session, state, obsolete, removed)

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
                table.column("timestamp"), pa.scalar(naive_utc(cut), SCHEMA.field("timestamp").type)
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
        return self._commit_rewrite(session, state, obsolete, removed)

    def _commit_rewrite(
        self, session: Session, state: LakeState, obsolete: list[str], removed: int
    ) -> dict[str, int]:
        """After an erasure or a purge rewrote days: publish the manifest, then drop the old
        files (readers follow the manifest, so they never see a half-rewritten day)."""
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
