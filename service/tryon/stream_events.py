"""The stream's touchpoint producer: started, applied, dwell, snapshot and end events.

The server's definition of a try-on (docs/events.md, "What counts as a try-on"): a product or
shade *shown* (the overlay drawn on a face) for at least `min_dwell_s`. Changing intensity or
finish of the shade already shown is an adjustment of that try-on, not a new one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from service.touchpoints import events as ev
from service.touchpoints.events import Who

CONTEXT = {"source": "tryon-stream"}
DEFAULT_MIN_DWELL_S = 1.0


def _product_key(sel: dict[str, Any] | None) -> tuple[Any, ...] | None:
    """What makes two selections the same try-on: glasses sku + variant, or the shade id
    (intensity and finish are adjustments)."""
    if sel is None:
        return None
    if sel.get("kind") == "glasses":
        return ("glasses", sel.get("sku"), sel.get("variant"))
    if sel.get("kind") == "shade":
        return ("shade", sel.get("shade"))
    return (sel.get("kind"),)


@dataclass
class TryOnSession:
    """Turns a stream's selections and frames into touchpoint events, measured on the server.

    - "Frame Applied"/"Shade Applied": once per try-on, when the selection has been shown
      (first frame with the overlay drawn) for `min_dwell_s`, or at the switch/end that
      closes it if it got there.
    - "Try-On Dwell": when a try-on that reached `min_dwell_s` is closed (switch or end),
      dwell_ms = time shown. Selections shown for less are not try-ons: no dwell, only
      counted (`short_selections` on the session summary).
    - The same shade re-selected with another intensity/finish is an adjustment: the open
      try-on goes on and its dwell reports the last intensity/finish.
    `emit` is the batcher's non-blocking emit.
    """

    who: Who
    emit: Callable[[list[dict[str, Any]]], None]
    clock: Callable[[], float] = time.monotonic
    # Shopper opted in to saving face measurements: events then carry the latest reliable ones.
    consent: bool = False
    min_dwell_s: float = DEFAULT_MIN_DWELL_S
    started: bool = False
    frames: int = 0
    try_ons: int = 0
    short_selections: int = 0
    adjustments: int = 0
    _current: dict[str, Any] | None = None
    _shown_at: float | None = None  # first frame with the overlay drawn
    _applied_sent: bool = False
    _t0: float = field(default_factory=time.monotonic)
    _measurements: dict[str, Any] | None = None

    def select(self, selection: dict[str, Any]) -> None:
        """A product/shade is chosen: an adjustment of the shown shade, or a new selection
        (the previous one's try-on is closed)."""
        key = _product_key(selection)
        if (
            self._current is not None
            and key is not None
            and key[0] == "shade"
            and key == _product_key(self._current)
        ):
            self._current = {**self._current, **selection}
            self.adjustments += 1
            self._maybe_applied()
            return
        events = self._close(reason="switch")
        if not self.started:
            self.started = True
            self._t0 = self.clock()
            kind = "glasses" if selection.get("kind") == "glasses" else "lipstick"
            events.append(
                ev.try_on_started(
                    self.who, kind, self._props(self._product_props(selection)), context=CONTEXT
                )
            )
        self._current = selection if selection.get("kind") in ("glasses", "shade") else None
        self._shown_at = None
        self._applied_sent = False
        if events:
            self.emit(events)

    def frame(self, applied: bool, measurements: dict[str, Any] | None = None) -> None:
        """A frame came back; the first one with the overlay drawn starts the shown time."""
        self.frames += 1
        if self.consent and measurements and measurements.get("reliable"):
            self._measurements = measurements
        if applied and self._current is not None and self._shown_at is None:
            self._shown_at = self.clock()
        self._maybe_applied()

    def snapshot(self, frame_id: int) -> None:
        self._maybe_applied()
        props = self._props({**self._product_props(self._current or {}), "frame_id": frame_id})
        self.emit([ev.snapshot_captured(self.who, props, context=CONTEXT)])

    def end(self, *, frames: int, dropped: int) -> None:
        events = self._close(reason="end")
        if not self.started:
            if events:
                self.emit(events)
            return
        summary = {
            "session_end": True,
            "frames": frames,
            "dropped_frames": dropped,
            "session_ms": int((self.clock() - self._t0) * 1000),
            "try_ons": self.try_ons,
            "short_selections": self.short_selections,
            "adjustments": self.adjustments,
        }
        last_dwell = next(
            (i for i in range(len(events) - 1, -1, -1) if events[i]["event"] == "Try-On Dwell"),
            None,
        )
        if last_dwell is not None:
            events[last_dwell]["properties"].update(summary)
        else:  # no try-on closed now: the summary alone (no product, so no report counts it)
            events.append(ev.try_on_dwell(self.who, 0, self._props(summary), context=CONTEXT))
        self.emit(events)

    # -- internals -------------------------------------------------------------------------
    def _shown_s(self) -> float:
        return 0.0 if self._shown_at is None else max(0.0, self.clock() - self._shown_at)

    def _maybe_applied(self) -> None:
        if (
            self._current is not None
            and not self._applied_sent
            and self._shown_at is not None
            and self._shown_s() >= self.min_dwell_s
        ):
            self.emit([self._applied_event()])

    def _applied_event(self) -> dict[str, Any]:
        sel = self._current
        assert sel is not None
        self._applied_sent = True
        self.try_ons += 1
        extra = self._props({})
        if sel.get("kind") == "glasses":
            return ev.frame_applied(
                self.who, sel["sku"], sel.get("variant"), extra, context=CONTEXT
            )
        if sel.get("sku"):
            extra = {**extra, "sku": sel["sku"]}
        return ev.shade_applied(
            self.who, sel["shade"], sel.get("intensity"), sel.get("finish"), extra,
            context=CONTEXT,
        )

    def _close(self, reason: str) -> list[dict[str, Any]]:
        """Close the open selection: its applied event if not sent yet, and its dwell, when
        it was shown for min_dwell_s; otherwise it only counts as a short selection."""
        if self._current is None:
            return []
        shown = self._shown_s()
        out: list[dict[str, Any]] = []
        if self._shown_at is not None and shown >= self.min_dwell_s:
            if not self._applied_sent:
                out.append(self._applied_event())
            props = self._props({**self._product_props(self._current), "reason": reason})
            out.append(ev.try_on_dwell(self.who, int(shown * 1000), props, context=CONTEXT))
        else:
            self.short_selections += 1
        self._current = None
        self._shown_at = None
        return out

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
                "sku": sel.get("sku"),
                "intensity": sel.get("intensity"),
                "finish": sel.get("finish"),
            }
        return {}
