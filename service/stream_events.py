"""Try-on session touchpoints (started, applied, dwell, snapshot, end), batched off frames."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

log = logging.getLogger(__name__)


class EventSink(Protocol):
    def emit(self, events: list[dict[str, Any]]) -> Any: ...


class EventBatcher:
    """A bounded buffer drained by one background thread into an EventSink.

    `emit` never blocks (a frame must never wait on the database): events go into a deque
    and are written in batches of `batch_size` or every `interval_s`. When the buffer is
    full the oldest events are dropped and counted, as posthog-python's client does.
    """

    def __init__(
        self,
        sink: EventSink,
        *,
        batch_size: int = 50,
        interval_s: float = 1.0,
        max_buffer: int = 10_000,
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        self.sink = sink
        self.batch_size = max(1, batch_size)
        self.interval_s = interval_s
        self._buf: deque[dict[str, Any]] = deque()
        self._max = max_buffer
        self._cv = threading.Condition()
        self._stop = False
        self._on_drop = on_drop
        self.emitted = 0
        self.dropped = 0
        self.failed_batches = 0
        self._thread = threading.Thread(target=self._run, name="tryon-events", daemon=True)
        self._thread.start()

    def emit(self, events: list[dict[str, Any]], *, flush: bool = False) -> None:
        with self._cv:
            for ev in events:
                if len(self._buf) >= self._max:
                    self._buf.popleft()
                    self._count_drop(1)
                self._buf.append(ev)
            if flush or len(self._buf) >= self.batch_size:
                self._cv.notify()

    def _count_drop(self, n: int) -> None:
        self.dropped += n
        if self._on_drop is not None:
            self._on_drop(n)

    def _take(self) -> list[dict[str, Any]]:
        batch = []
        while self._buf and len(batch) < max(self.batch_size, 500):
            batch.append(self._buf.popleft())
        return batch

    def _run(self) -> None:
        while True:
            with self._cv:
                if len(self._buf) < self.batch_size and not self._stop:
                    self._cv.wait(self.interval_s)
                batch = self._take()
                stopping = self._stop and not self._buf
            if batch:
                self._write(batch)
            if stopping:
                return

    def _write(self, batch: list[dict[str, Any]]) -> None:
        try:
            self.sink.emit(batch)
            self.emitted += len(batch)
        except Exception:  # a failing sink must not kill the thread or any stream
            log.exception("event sink failed; %d events lost", len(batch))
            self.failed_batches += 1
            self._count_drop(len(batch))

    def close(self, timeout_s: float = 10.0) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify()
        self._thread.join(timeout_s)


@dataclass
class SessionIdentity:
    """Who and where: ids the stream's query string (or auth message) gave."""

    anonymous_id: str
    session_id: str
    channel: str = "web"
    user_id: str | None = None
    store_id: str | None = None
    kiosk_id: str | None = None


@dataclass
class TryOnSession:
    """Turns a stream's selections and frames into touchpoint events.

    Dwell is the time a product (or shade) stayed selected, reported when the shopper
    switches to another one or leaves. `emit` is the batcher's non-blocking emit.
    """

    identity: SessionIdentity
    emit: Callable[[list[dict[str, Any]]], None]
    clock: Callable[[], float] = time.monotonic
    # Shopper opted in to saving face measurements: events then carry the latest reliable ones.
    consent: bool = False
    started: bool = False
    frames: int = 0
    _current: dict[str, Any] | None = None
    _since: float = 0.0
    _applied: bool = False
    _t0: float = field(default_factory=time.monotonic)
    _measurements: dict[str, Any] | None = None

    def _event(self, name: str, properties: dict[str, Any]) -> dict[str, Any]:
        ident = self.identity
        ev: dict[str, Any] = {
            "message_id": uuid.uuid4().hex,
            "event": name,
            "anonymous_id": ident.anonymous_id,
            "session_id": ident.session_id,
            "channel": ident.channel,
            "timestamp": datetime.now(UTC).isoformat(),
            "properties": {
                **self._consented_measurements(),
                **{k: v for k, v in properties.items() if v is not None},
            },
            "context": {"source": "tryon-stream"},
        }
        for key in ("user_id", "store_id", "kiosk_id"):
            if getattr(ident, key):
                ev[key] = getattr(ident, key)
        return ev

    def select(self, selection: dict[str, Any]) -> None:
        """A new product/shade is chosen: close the previous one's dwell, start this one."""
        events = self._close_dwell(reason="switch")
        if not self.started:
            self.started = True
            self._t0 = self.clock()
            events.append(
                self._event(
                    "Try-On Started",
                    {
                        "product_type": "glasses"
                        if selection.get("kind") == "glasses"
                        else "lipstick",
                        **self._product_props(selection),
                    },
                )
            )
        self._current = selection
        self._since = self.clock()
        self._applied = False
        if events:
            self.emit(events)

    def frame(self, applied: bool, measurements: dict[str, Any] | None = None) -> None:
        """A frame came back; the first one with the overlay drawn is 'applied'."""
        self.frames += 1
        if self.consent and measurements and measurements.get("reliable"):
            self._measurements = measurements
        if applied and not self._applied and self._current is not None:
            self._applied = True
            sel = self._current
            name = "Frame Applied" if sel.get("kind") == "glasses" else "Shade Applied"
            self.emit([self._event(name, self._product_props(sel))])

    def snapshot(self, frame_id: int) -> None:
        props = self._product_props(self._current or {})
        self.emit([self._event("Snapshot Captured", {**props, "frame_id": frame_id})])

    def end(self, *, frames: int, dropped: int) -> None:
        events = self._close_dwell(reason="end")
        if self.started:
            duration = int((self.clock() - self._t0) * 1000)
            summary = {
                "session_end": True,
                "frames": frames,
                "dropped_frames": dropped,
                "session_ms": duration,
            }
            if events:
                events[-1]["properties"].update(summary)
            else:
                events.append(self._event("Try-On Dwell", {"dwell_ms": 0, **summary}))
        if events:
            self.emit(events)

    def _close_dwell(self, reason: str) -> list[dict[str, Any]]:
        if self._current is None:
            return []
        dwell_ms = int(max(0.0, self.clock() - self._since) * 1000)
        props = {**self._product_props(self._current), "dwell_ms": dwell_ms, "reason": reason}
        self._current = None
        return [self._event("Try-On Dwell", props)]

    def _consented_measurements(self) -> dict[str, Any]:
        """PD and face width only (never landmarks), and only with the shopper's consent."""
        m = self._measurements
        if not self.consent or m is None:
            return {}
        keys = ("pd_mm", "face_width_mm", "size_band")
        return {"consent": True, **{k: m[k] for k in keys if m.get(k) is not None}}

    @staticmethod
    def _product_props(sel: dict[str, Any]) -> dict[str, Any]:
        if sel.get("kind") == "glasses":
            return {"sku": sel.get("sku"), "variant": sel.get("variant")}
        if sel.get("kind") == "shade":
            return {
                "shade": sel.get("shade"),
                "intensity": sel.get("intensity"),
                "finish": sel.get("finish"),
            }
        return {}
