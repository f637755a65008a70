"""Box-sized render targets and anti-aliasing: MSAA on a GPU, supersampling the box on a CPU."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np

from vision.errors import OptionsError

Antialias = Literal["auto", "msaa", "ssaa", "none"]
MAX_SSAA_FACTOR = 8
# Targets grow in steps so a box that wobbles by a pixel per frame never re-allocates.
GROW_STEP_PX = 64


@dataclass(frozen=True)
class AAChoice:
    """mode: msaa (samples per pixel), ssaa (factor x factor samples), none."""

    mode: Literal["msaa", "ssaa", "none"]
    samples: int = 0
    factor: int = 1


def choose_aa(option: str, msaa_samples: int, ssaa_factor: int, *, software: bool,
              max_samples: int) -> AAChoice:
    """Resolve the configured anti-aliasing for a device.

    auto: MSAA on a GPU (cheap there); on a software rasteriser (llvmpipe) MSAA shades every
    sample of the whole primitive pipeline and costs ~3 ms a frame, while drawing only the
    glasses' box at 2x2 and averaging on the CPU matches it for a fraction (benchmarks.aa_quality).
    msaa_samples == 0 switches anti-aliasing off under auto (the historical meaning).
    """
    if option not in ("auto", "msaa", "ssaa", "none"):
        raise OptionsError(f"antialias must be auto, msaa, ssaa or none, got {option!r}")
    if not 1 <= ssaa_factor <= MAX_SSAA_FACTOR:
        raise OptionsError(f"ssaa_factor must be 1..{MAX_SSAA_FACTOR}, got {ssaa_factor}")
    if option == "auto":
        option = "none" if msaa_samples <= 0 else "ssaa" if software else "msaa"
    if option == "msaa":
        samples = min(max(msaa_samples, 0), max_samples)
        return AAChoice("msaa", samples=samples) if samples > 1 else AAChoice("none")
    if option == "ssaa" and ssaa_factor > 1:
        return AAChoice("ssaa", factor=ssaa_factor)
    return AAChoice("none")


def crop_projection(proj: np.ndarray, box_gl: tuple[int, int, int, int], width: int,
                    height: int) -> np.ndarray:
    """proj for the full frame, narrowed to box_gl (x, y, w, h in GL pixels, origin bottom-left).

    Drawing with it into a (w*k, h*k) viewport rasterises exactly the box's pixels, each split
    into k x k samples, so targets are box-sized and nothing outside the box is touched.
    """
    x, y, w, h = box_gl
    xl, xr = 2.0 * x / width - 1.0, 2.0 * (x + w) / width - 1.0
    yb, yt = 2.0 * y / height - 1.0, 2.0 * (y + h) / height - 1.0
    sx, sy = (xr - xl) / 2.0, (yt - yb) / 2.0
    crop = np.eye(4)
    crop[0, 0], crop[0, 3] = 1.0 / sx, -(xr + xl) / 2.0 / sx
    crop[1, 1], crop[1, 3] = 1.0 / sy, -(yt + yb) / 2.0 / sy
    return crop @ np.asarray(proj, dtype=np.float64)


class BoxTargets:
    """Draw and read-back framebuffers sized to the glasses' box (grown, never per frame)."""

    def __init__(self, ctx: Any, resolve_prog: Any, quad_vao: Any) -> None:
        self._ctx, self._resolve_prog, self._quad_vao = ctx, resolve_prog, quad_vao
        self._objs: list[Any] = []
        self._cap: tuple[int, int] = (0, 0)
        self._aa: AAChoice | None = None
        self.draw_fbo: Any = None
        self._read_fbo: Any = None
        self._ms_color: Any = None

    def prepare(self, width: int, height: int, aa: AAChoice) -> tuple[int, int, int, int]:
        """Targets for a width x height box; the viewport (0, 0, w, h) to draw it with."""
        k = aa.factor if aa.mode == "ssaa" else 1
        need = (width * k, height * k)
        if aa != self._aa or need[0] > self._cap[0] or need[1] > self._cap[1]:
            cap = (max(self._cap[0] if aa == self._aa else 0, _grow(need[0])),
                   max(self._cap[1] if aa == self._aa else 0, _grow(need[1])))
            self._allocate(cap, aa)
        return (0, 0, *need)

    def _allocate(self, cap: tuple[int, int], aa: AAChoice) -> None:
        self.release()
        ctx = self._ctx
        samples = aa.samples if aa.mode == "msaa" else 0
        # A multisampled colour buffer is a texture: the resolve shader reads its samples.
        color = ctx.texture(cap, 4, samples=samples) if samples else ctx.renderbuffer(cap, 4)
        depth = ctx.depth_renderbuffer(cap, samples=samples)
        self.draw_fbo = ctx.framebuffer(color_attachments=[color], depth_attachment=depth)
        self._objs = [self.draw_fbo, color, depth]
        self._ms_color = color
        if samples:
            resolve = ctx.renderbuffer(cap, 4)
            self._read_fbo = ctx.framebuffer(color_attachments=[resolve])
            self._objs += [self._read_fbo, resolve]
        else:
            self._read_fbo = self.draw_fbo
        self._cap, self._aa = cap, aa

    def read(self, width: int, height: int) -> np.ndarray:
        """The drawn box as premultiplied BGRA, top row first, (height, width, 4) uint8."""
        aa = self._aa
        if aa is None:
            raise RuntimeError("BoxTargets.read before prepare")
        if aa.mode == "msaa":
            self._resolve(width, height, aa.samples)
        k = aa.factor if aa.mode == "ssaa" else 1
        raw = self._read_fbo.read(viewport=(0, 0, width * k, height * k), components=4,
                                  alignment=1)
        rgba: np.ndarray = np.frombuffer(raw, dtype=np.uint8).reshape(height * k, width * k, 4)
        if k > 1:
            # INTER_AREA at an integer factor is the exact k x k box average; averaging
            # premultiplied colour is what a resolve does.
            rgba = cv2.resize(rgba, (width, height), interpolation=cv2.INTER_AREA)
        # GL rows run bottom-up and RGBA: two OpenCV passes (a numpy fancy-index swizzle cost
        # ~0.5 ms on a 1280x720 frame's box).
        bgra: np.ndarray = cv2.flip(cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA), 0)
        return bgra

    def _resolve(self, width: int, height: int, samples: int) -> None:
        """Average the MSAA samples into the read buffer (the box only)."""
        import moderngl

        out = self._read_fbo
        out.use()
        out.viewport = (0, 0, width, height)
        self._ctx.disable(moderngl.DEPTH_TEST | moderngl.BLEND)
        self._ms_color.use(0)
        self._resolve_prog["u_tex"].value = 0
        self._resolve_prog["u_samples"].value = samples
        self._quad_vao.render(moderngl.TRIANGLE_STRIP)

    def release(self) -> None:
        for obj in self._objs:
            obj.release()
        self._objs, self._cap, self._aa = [], (0, 0), None
        self.draw_fbo = self._read_fbo = self._ms_color = None


def _grow(n: int) -> int:
    return -(-max(n, 1) // GROW_STEP_PX) * GROW_STEP_PX
