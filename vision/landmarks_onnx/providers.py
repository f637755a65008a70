"""ONNX Runtime execution providers: chosen once at start, GPU when there is one, else CPU."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
GPU_PROVIDERS = (TENSORRT, CUDA)
# Short names accepted in settings ("auto" = the best available).
ALIASES = {"cpu": CPU, "cuda": CUDA, "tensorrt": TENSORRT, "trt": TENSORRT}


def resolve(requested: Sequence[str] = ()) -> list[str]:
    """The providers wanted: the requested ones (short names allowed) or, with none requested
    or "auto", TensorRT and CUDA where this onnxruntime build has them; CPU last."""
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    names = [ALIASES.get(p.lower(), p) for p in requested if p.lower() != "auto"]
    names = [p for p in dict.fromkeys(names) if p != CPU]
    if not names:
        names = [p for p in GPU_PROVIDERS if p in available]
    return [*names, CPU] if names else [CPU]


def usable(providers: Sequence[str]) -> list[str]:
    """The providers of `resolve` that this onnxruntime build has (CPU always)."""
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    return [p for p in providers if p in available and p != CPU] + [CPU]


def make_session(path: str, providers: Sequence[str], threads: int = 0) -> Any:
    """An InferenceSession on `providers` (from `usable`). A GPU provider that fails to start
    (no device, no CUDA libraries) falls back to CPU; the caller logs what it got."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        so.intra_op_num_threads = threads
    so.log_severity_level = 3  # ORT's own fall-back warnings are replaced by one line of ours
    try:
        return ort.InferenceSession(path, sess_options=so, providers=list(providers))
    except Exception:  # a GPU provider that cannot start must never crash the service
        if list(providers) == [CPU]:
            raise
        return ort.InferenceSession(path, sess_options=so, providers=[CPU])
