"""The stream's touchpoint producer: started, applied, dwell, snapshot and end events."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from service.touchpoints import events as ev
from service.touchpoints.events import Who

CONTEXT = {"source": "tryon-stream"}


@dataclass
class TryOnSession:
    """Turns a stream's selections and frames into touchpoint events.

    Dwell is the time a product (or shade) stayed selected, reported when the shopper
    switches to another one or leaves. `emit` is the batcher's non-blocking emit.
    """

    who: Who
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

    def select(self, selection: dict[str, Any]) -> None:
        """A new product/shade is chosen: close the previous one's dwell, start this one."""
        events = self._close_dwell(reason="switch")
        if not self.started:
            self.started = True
            self._t0 = self.clock()
            kind = "glasses" if selection.get("kind") == "glasses" else "lipstick"
            events.append(
                ev.try_on_started(
                    self.who, kind, self._props(self._product_props(selection)), context=CONTEXT
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
            extra = self._props({})
            if sel.get("kind") == "glasses":
                event = ev.frame_applied(
                    self.who, sel["sku"], sel.get("variant"), extra, context=CONTEXT
                )
            else:
                event = ev.shade_applied(
                    self.who,
                    sel["shade"],
                    sel.get("intensity"),
                    sel.get("finish"),
                    extra,
                    context=CONTEXT,
                )
            self.emit([event])

    def snapshot(self, frame_id: int) -> None:
        props = self._props({**self._product_props(self._current or {}), "frame_id": frame_id})
        self.emit([ev.snapshot_captured(self.who, props, context=CONTEXT)])

    def end(self, *, frames: int, dropped: int) -> None:
        summary = {
            "session_end": True,
            "frames": frames,
            "dropped_frames": dropped,
            "session_ms": int((self.clock() - self._t0) * 1000),
        }
        events = self._close_dwell(reason="end", extra=summary if self.started else None)
        if self.started and not events:
            events.append(ev.try_on_dwell(self.who, 0, self._props(summary), context=CONTEXT))
        if events:
            self.emit(events)

    def _close_dwell(
        self, reason: str, extra: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        if self._current is None:
            return []
        dwell_ms = int(max(0.0, self.clock() - self._since) * 1000)
        props = self._props(
            {**self._product_props(self._current), "reason": reason, **(extra or {})}
        )
        self._current = None
        return [ev.try_on_dwell(self.who, dwell_ms, props, context=CONTEXT)]

    def _props(self, properties: dict[str, Any]) -> dict[str, Any]:
        return {**self._consented_measurements(), **properties}

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
