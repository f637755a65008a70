"""What a try-on frame gives back: the selection it was drawn with and the typed result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from vision.geometry import HeadPose
from vision.landmarks import Face
from vision.measure import FaceMeasurements, FitAdvice

if TYPE_CHECKING:
    from vision.catalog import GlassesProduct
    from vision.lipstick import Shade


@dataclass(frozen=True)
class Selection:
    """What is being tried on: nothing, one glasses product (+variant) or one shade."""

    kind: Literal["none", "glasses", "shade"] = "none"
    sku: str | None = None
    variant: str | None = None
    shade: str | None = None
    intensity: float = 1.0
    finish: str | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "glasses":
            return {"kind": "glasses", "sku": self.sku, "variant": self.variant}
        if self.kind == "shade":
            return {
                "kind": "shade", "shade": self.shade, "sku": self.sku or self.shade,
                "intensity": self.intensity, "finish": self.finish,
            }
        return {"kind": "none"}


@dataclass
class TryOnResult:
    """One processed frame. image: the composited BGR frame; jpeg when encoded.

    timings_ms has one entry per stage in STAGES that ran plus "total".
    applied: whether the selected overlay was drawn (False when no face, a face whose pose
    cannot be solved, or nothing selected). product: the GlassesProduct or Shade this frame
    was processed with, so callers never look it up again (the selection may change since).
    fit: frame-size advice from the measurements, with a verdict on the selected glasses.
    """

    image: np.ndarray
    faces: list[Face]
    pose: HeadPose | None
    measurements: FaceMeasurements | None
    timings_ms: dict[str, float]
    selection: Selection = field(default_factory=Selection)
    applied: bool = False
    frame_index: int = 0
    jpeg: bytes | None = None
    product: GlassesProduct | Shade | None = None
    fit: FitAdvice | None = None
    # The box of the frame the overlay changed, (x0, y0, x1, y1), or None (nothing drawn).
    changed: tuple[int, int, int, int] | None = None
    # A region reply (process_bytes(region=True)): (x, y, w, h) of the frame `jpeg` covers,
    # (0, 0, 0, 0) with an empty jpeg when nothing changed; None: jpeg is the whole frame.
    region: tuple[int, int, int, int] | None = None

    def _measurements_dict(self) -> dict[str, Any] | None:
        """A stream's pooled estimate (values, uncertainty, `reliable`, flags); a photo's
        measurement only when reliable, else only why not (quality_flags)."""
        m = self.measurements
        if m is None:
            return None
        if not m.reliable and m.converged and m.pooled_frames == 0:  # IMAGE mode: alone
            return m.withheld_dict()
        return m.to_dict()

    def summary(self, include_landmarks: bool = False) -> dict[str, Any]:
        """JSON-ready description (no image)."""
        out: dict[str, Any] = {
            "frame_index": self.frame_index,
            "faces": len(self.faces),
            "applied": self.applied,
            "selection": self.selection.to_dict(),
            "pose": self.pose.to_dict() if self.pose is not None else None,
            "measurements": self._measurements_dict(),
            "fit": self.fit.to_dict() if self.fit is not None else None,
            "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
        }
        if include_landmarks and self.faces:
            f = self.faces[0]
            out["landmarks"] = np.round(f.landmarks, 2).tolist()
            out["bbox"] = np.round(f.bbox, 1).tolist()
        return out
