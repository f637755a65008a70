"""Drawn overlays kept for reuse while the vertices they were drawn for move under a tolerance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

T = TypeVar("T")


@dataclass
class Drawn(Generic[T]):
    """One drawing: what it was drawn for (key: its first item compared by identity), the
    screen positions of its vertices then, and what was drawn (None: nothing in the frame)."""

    key: tuple[Any, ...]
    px: np.ndarray
    overlay: T | None


class DrawnOverlays(Generic[T]):
    """The last `capacity` drawings (one per face or stream a renderer serves), most recently
    used last. A drawing is reused while every vertex lies within `tolerance_px` of where it
    was drawn: tested against that drawing's own positions, so the error never accumulates."""

    def __init__(self, tolerance_px: float, capacity: int) -> None:
        self.tolerance_px = tolerance_px  # 0: nothing is kept, every frame draws
        self.capacity = capacity
        self._drawn: list[Drawn[T]] = []
        self.draws = 0  # drawings made ...
        self.reuses = 0  # ... and reused unchanged

    def find(self, key: tuple[Any, ...], px: np.ndarray) -> Drawn[T] | None:
        """A drawing for this key with every vertex within tolerance of px, or None."""
        if self.tolerance_px <= 0:
            return None
        for i in range(len(self._drawn) - 1, -1, -1):
            d = self._drawn[i]
            if (d.key[0] is key[0] and d.key[1:] == key[1:] and d.px.shape == px.shape
                    and float(np.abs(d.px - px).max()) < self.tolerance_px):
                self._drawn.append(self._drawn.pop(i))
                self.reuses += 1
                return d
        return None

    def add(self, key: tuple[Any, ...], px: np.ndarray, overlay: T | None) -> None:
        self.draws += 1
        if self.tolerance_px <= 0:
            return
        self._drawn.append(Drawn(key, px, overlay))
        del self._drawn[:-self.capacity]

    def clear(self) -> None:
        self._drawn.clear()
