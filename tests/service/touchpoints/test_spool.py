"""The stream events' spool: a batch the database cannot take waits on disk, never dropped.

Real SQLite files and the real ingest path; "the database is down" is a sink that raises
SinkUnavailable (what DatabaseEventSink raises on an unreachable database) until told not to.
"""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from service.db.engine import make_engine, make_sessionmaker
from service.db.migrate import upgrade
from service.touchpoints.batcher import EventBatcher
from service.touchpoints.models import Event
from service.touchpoints.service import Ingestor
from service.touchpoints.sink import DatabaseEventSink, SinkUnavailable
from service.touchpoints.spool import EventSpool
from tests.service.harness import wait_for
from tests.service.touchpoints.support import track


class Flaky:
    """The real database sink, unavailable while `down` is set."""

    def __init__(self, sink: DatabaseEventSink) -> None:
        self.sink, self.down, self.calls = sink, threading.Event(), 0

    def emit(self, events: list[dict[str, Any]]) -> object:
        self.calls += 1
        if self.down.is_set():
            raise SinkUnavailable("database down (test)")
        return self.sink.emit(events)


@pytest.fixture
def db(tmp_path: Path) -> Any:
    engine = make_engine(f"sqlite:///{tmp_path}/spool.sqlite")
    upgrade(engine)
    yield make_sessionmaker(engine)
    engine.dispose()


def stored_ids(sessions: Any) -> list[str]:
    with sessions() as s:
        return list(s.scalars(select(Event.message_id)))


def events(n: int) -> list[dict[str, Any]]:
    return [track("Snapshot Captured", f"spool-{uuid.uuid4().hex[:6]}") for _ in range(n)]


class TestSpool:
    def test_outage_batches_wait_on_disk_and_are_replayed_once(self, db: Any,
                                                               tmp_path: Path) -> None:
        sink = Flaky(DatabaseEventSink(db, Ingestor()))
        spool = EventSpool(tmp_path / "spool", 1 << 20)
        replayed: list[int] = []
        dropped: list[int] = []
        batcher = EventBatcher(sink, batch_size=10, interval_s=0.05, spool=spool,
                               on_replay=replayed.append, on_drop=dropped.append,
                               retry_initial_s=0.05, retry_max_s=0.2)
        before = events(10)
        batcher.emit(before, flush=True)
        assert wait_for(lambda: len(stored_ids(db)) == 10, 10)
        sink.down.set()
        during = events(35)
        for i in range(0, 35, 7):
            batcher.emit(during[i:i + 7], flush=True)
        assert wait_for(lambda: batcher.spooled == 35, 10), batcher.spooled
        lines = spool.path.read_text().splitlines()
        assert {json.loads(x)["message_id"] for x in lines} == {e["message_id"] for e in during}
        sink.down.clear()
        assert wait_for(lambda: batcher.spooled == 0, 10)
        batcher.close()
        ids = stored_ids(db)
        assert sorted(ids) == sorted(e["message_id"] for e in before + during)
        assert sum(replayed) == 35 and not dropped
        assert not spool.path.exists()  # emptied, then removed at close

    def test_beyond_the_bound_the_oldest_are_dropped_and_counted(self, db: Any,
                                                                 tmp_path: Path) -> None:
        sink = Flaky(DatabaseEventSink(db, Ingestor()))
        sink.down.set()
        batch = events(40)
        line = len(json.dumps(batch[0], separators=(",", ":"))) + 1
        dropped: list[int] = []
        spool = EventSpool(tmp_path / "spool", 25 * line + line // 2, on_drop=dropped.append)
        batcher = EventBatcher(sink, batch_size=5, interval_s=0.05, spool=spool,
                               on_drop=dropped.append, retry_initial_s=30, retry_max_s=30)
        for i in range(0, 40, 5):
            batcher.emit(batch[i:i + 5], flush=True)
        assert wait_for(lambda: spool.pending + sum(dropped) == 40, 10)
        assert sum(dropped) >= 14 and spool.pending_bytes <= spool.max_bytes
        kept = [json.loads(x)["message_id"] for x in
                spool.path.read_bytes()[spool._offset:].decode().splitlines()]
        assert kept == [e["message_id"] for e in batch][-len(kept):]  # the newest stay
        sink.down.clear()
        batcher._retry_at = 0.0  # no need to wait the 30 s backoff in a test
        batcher.emit([], flush=True)
        assert wait_for(lambda: batcher.spooled == 0, 10)
        batcher.close()
        assert sorted(stored_ids(db)) == sorted(kept)

    def test_a_spool_left_by_a_dead_process_is_replayed_at_start(self, db: Any,
                                                                 tmp_path: Path) -> None:
        left = events(12)
        directory = tmp_path / "spool"
        directory.mkdir()
        # What a process that died mid-outage leaves: its data file, its lock no longer held.
        (directory / "spool-99999-deadbeef.jsonl").write_text(
            "".join(json.dumps(e) + "\n" for e in left) + '{"torn line\n')
        (directory / "spool-99999-deadbeef.lock").touch()
        # ... and a live process's spool, which must be left alone.
        live = EventSpool(directory, 1 << 20)
        live.append(events(3))
        batcher = EventBatcher(DatabaseEventSink(db, Ingestor()), interval_s=0.05,
                               spool=EventSpool(directory, 1 << 20))
        assert wait_for(lambda: len(stored_ids(db)) == 12, 10)
        batcher.close()
        assert sorted(stored_ids(db)) == sorted(e["message_id"] for e in left)
        assert not (directory / "spool-99999-deadbeef.jsonl").exists()
        assert live.path.exists() and live.pending == 3
        live.close()

    def test_database_sink_raises_unavailable_instead_of_dropping(self, tmp_path: Path) -> None:
        engine = make_engine(f"sqlite:///{tmp_path}/missing-dir/x.sqlite")
        sink = DatabaseEventSink(make_sessionmaker(engine), Ingestor())
        with pytest.raises(SinkUnavailable):
            sink.emit([track("Try-On Started", "s")])
        engine.dispose()

    def test_sqlite_file_gone_then_back_loses_nothing(self, tmp_path: Path) -> None:
        """The real sink on a database that cannot be opened, then can."""
        where = tmp_path / "later"
        engine = make_engine(f"sqlite:///{where}/db.sqlite")
        sessions = make_sessionmaker(engine)
        batcher = EventBatcher(DatabaseEventSink(sessions, Ingestor()), interval_s=0.05,
                               spool=EventSpool(tmp_path / "spool", 1 << 20),
                               retry_initial_s=0.05, retry_max_s=0.2)
        sent = events(20)
        batcher.emit(sent, flush=True)
        assert wait_for(lambda: batcher.spooled == 20, 10)
        where.mkdir()
        upgrade(engine)
        assert wait_for(lambda: batcher.spooled == 0, 10)
        batcher.close()
        with sessions() as s:
            assert s.scalar(select(func.count()).select_from(Event)) == 20
        assert sorted(stored_ids(sessions)) == sorted(e["message_id"] for e in sent)
        engine.dispose()
