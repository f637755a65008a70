"""The event lake: the events table as day-partitioned Parquet any columnar engine can read."""

from __future__ import annotations

from service.analytics.lake_export import LakeExporter
from service.analytics.lake_privacy import LakePrivacy


class EventLake(LakeExporter, LakePrivacy):
    """One lake location. Thread-safe; any number of processes may share the location.

    The layout and manifest are in lake_layout, the files and the one-writer lock in
    lake_store, the export in lake_export, erasure and retention in lake_privacy. Readers
    (service.analytics.duck) read the manifest's file list, never a directory listing, so a
    compaction or an erasure (write new files, swap the manifest, then delete the old files)
    is never seen half-done; a reader that listed a file just deleted retries once.
    """
