"""The converted MediaPipe models on ONNX Runtime, shared by every tracker in a process."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vision.errors import LandmarkError
from vision.landmarks_onnx import attention
from vision.landmarks_onnx import providers as prov
from vision.landmarks_onnx.batcher import MicroBatcher

log = logging.getLogger(__name__)

MODELS_DIR = Path(__file__).resolve().parents[1] / "data" / "models"
DETECTOR = "face_detection_short_range.onnx"
MESH = "face_landmark_with_attention.onnx"


class LandmarkModels:
    """Sessions for the detector (128x128) and the attention mesh model (192x192: mesh, lips,
    eyes, irises, face flag), NHWC float32 with a dynamic batch. With `batch_window_ms` > 0
    each model's calls from concurrent trackers go through a MicroBatcher."""

    def __init__(self, providers: Sequence[str] = (), batch_window_ms: float = 0.0,
                 max_batch: int = 64, threads: int = 0) -> None:
        wanted = prov.resolve(providers)
        requested = prov.usable(wanted)
        if not threads and requested == [prov.CPU]:
            # One thread per call: streams run in parallel on their own threads, and on these
            # small models a second intra-op thread does not lower the latency of one call.
            threads = 1
        self._sessions = {name: prov.make_session(str(MODELS_DIR / name), requested, threads)
                          for name in (DETECTOR, MESH)}
        outputs = tuple(o.name for o in self._sessions[MESH].get_outputs())
        if outputs != attention.OUTPUTS:  # the tracker reads them by position
            raise LandmarkError(f"{MESH}: outputs {outputs}, expected {attention.OUTPUTS}")
        self.providers: list[str] = list(self._sessions[MESH].get_providers())
        self.provider: str = self.providers[0]
        if wanted[0] != prov.CPU and self.provider == prov.CPU:  # the one line on fall-back
            why = ("a GPU or its CUDA libraries are missing" if requested[0] != prov.CPU else
                   "this onnxruntime build lacks it (pip install .[gpu] for onnxruntime-gpu)")
            log.warning("landmark backend onnx: %s not usable (%s); falling back to "
                        "CPUExecutionProvider", wanted[0], why)
        else:
            log.info("landmark backend onnx on %s", self.provider)
        self._inputs = {n: s.get_inputs()[0].name for n, s in self._sessions.items()}
        self.batchers: dict[str, MicroBatcher] = {}
        if batch_window_ms > 0:
            for name in self._sessions:
                self.batchers[name] = MicroBatcher(
                    functools.partial(self._run, name), window_ms=batch_window_ms,
                    max_batch=max_batch, name=f"batch-{name}")
        self._lock = threading.Lock()

    def _run(self, name: str, x: np.ndarray) -> list[np.ndarray]:
        outs: list[np.ndarray] = self._sessions[name].run(None, {self._inputs[name]: x})
        return [o.reshape(len(x), -1) for o in outs]

    def run(self, name: str, x: np.ndarray) -> list[np.ndarray]:
        """(n, ...) float32 input -> the model's outputs, each (n, k)."""
        b = self.batchers.get(name)
        return b.submit(x) if b is not None else self._run(name, x)

    def register(self) -> None:
        for b in self.batchers.values():
            b.register()

    def unregister(self) -> None:
        for b in self.batchers.values():
            b.unregister()

    def close(self) -> None:
        for b in self.batchers.values():
            b.close()


_shared: dict[tuple[Any, ...], LandmarkModels] = {}
_shared_lock = threading.Lock()


def shared_models(providers: Sequence[str] = (), batch_window_ms: float = 0.0,
                  max_batch: int = 64) -> LandmarkModels:
    """One LandmarkModels per process and configuration (sessions are thread-safe)."""
    key = (tuple(providers), float(batch_window_ms), int(max_batch))
    with _shared_lock:
        if key not in _shared:
            _shared[key] = LandmarkModels(providers, batch_window_ms, max_batch)
        return _shared[key]


def active_providers() -> list[str]:
    """The execution provider of every LandmarkModels built in this process (for /readyz)."""
    with _shared_lock:
        return sorted({m.provider for m in _shared.values()})
