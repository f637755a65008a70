"""Pick the EGL device for an offscreen GL context: a GPU when asked and present, else the CPU."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from vision.errors import OptionsError

log = logging.getLogger(__name__)

RenderDevice = Literal["auto", "gpu", "cpu"]
MAX_EGL_DEVICES = 8
GL_VERSION = 330
# Mesa's software rasterisers: what a CPU-only machine (and CI) has.
SOFTWARE_RENDERERS = ("llvmpipe", "softpipe", "swrast", "lavapipe")


def is_software(gl_renderer: str) -> bool:
    return any(name in gl_renderer.lower() for name in SOFTWARE_RENDERERS)


@dataclass(frozen=True)
class ContextChoice:
    """The context, its EGL device index, and whether a GPU was wanted but not found."""

    ctx: Any
    device_index: int
    gl_renderer: str
    fell_back: bool

    @property
    def software(self) -> bool:
        return is_software(self.gl_renderer)


def _try(moderngl: Any, backend: str, index: int) -> Any | None:
    try:
        return moderngl.create_standalone_context(
            backend=backend, device_index=index, require=GL_VERSION
        )
    except Exception:  # no such device, or one that cannot give a 3.3 core context
        return None


def create_context(device: RenderDevice = "auto", backend: str = "egl") -> ContextChoice:
    """A standalone GL context on the requested kind of device.

    auto: the first hardware (GPU) device, else the software one. gpu: the same, but logs a
    warning and marks `fell_back` when only the CPU rasteriser exists, so a GPU deployment
    that lost its driver still serves (slower) instead of failing. cpu: Mesa's llvmpipe even
    where a GPU exists (to keep a GPU free, or to compare).
    """
    if device not in ("auto", "gpu", "cpu"):
        raise OptionsError(f"render device must be auto, gpu or cpu, got {device!r}")
    import moderngl

    found: list[tuple[int, Any, str]] = []
    for index in range(MAX_EGL_DEVICES):
        ctx = _try(moderngl, backend, index)
        if ctx is None:
            if index == 0:
                continue  # device 0 may be a GPU without a usable driver; look further
            break
        name = str(ctx.info["GL_RENDERER"])
        want = is_software(name) if device == "cpu" else not is_software(name)
        if want:
            for _, other, _ in found:
                other.release()
            return ContextChoice(ctx, index, name, fell_back=False)
        found.append((index, ctx, name))
    # No usable device is the deployment's fault, not the caller's: a RuntimeError (a 500),
    # deliberately not a VisionError (which the service answers with a 4xx).
    if not found:
        raise RuntimeError(
            f"no EGL device gives an OpenGL {GL_VERSION // 100}.{GL_VERSION % 100 // 10} context; "
            "install libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri (Mesa) or the NVIDIA driver"
        )
    index, ctx, name = found[0]
    for _, other, _ in found[1:]:
        other.release()
    if device == "cpu":
        raise RuntimeError(f"no software (CPU) EGL device found; only {name}")
    if device == "gpu":
        log.warning("render device 'gpu' requested but no GPU EGL device found; using %s", name)
    return ContextChoice(ctx, index, name, fell_back=device == "gpu")
