"""LipstickPainter: a shade and finish blended onto the lips in Lab, inside the lips' box only."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vision.landmarks import Face
from vision.lipstick.color import srgb_to_lab
from vision.lipstick.contour import INNER_LOWER, INNER_UPPER, OUTER_LOWER, OUTER_UPPER
from vision.lipstick.mask import DEFAULT_PARAMS, MaskParams, MouthFrame, lip_mask_canvas
from vision.lipstick.shades import Finish, Shade, check_intensity


@dataclass(frozen=True)
class FinishLook:
    """How a finish treats the lips' own lightness and adds light.

    detail: share of the original lightness variation kept (texture, lighting).
    highlight_cap: original highlights above the lips' mean are compressed to this (matte).
    gloss: strength of the specular highlight along the lip shape (share of the way to white).
    sparkle: strength of the per-position glitter.
    """

    detail: float
    highlight_cap: float
    gloss: float
    sparkle: float


LOOKS: dict[Finish, FinishLook] = {
    Finish.MATTE: FinishLook(detail=0.75, highlight_cap=5.0, gloss=0.0, sparkle=0.0),
    Finish.SATIN: FinishLook(detail=0.9, highlight_cap=14.0, gloss=0.22, sparkle=0.0),
    Finish.GLOSS: FinishLook(detail=1.0, highlight_cap=100.0, gloss=0.6, sparkle=0.0),
    Finish.SHIMMER: FinishLook(detail=0.85, highlight_cap=20.0, gloss=0.18, sparkle=0.45),
}


@dataclass(frozen=True)
class PainterOptions:
    mask: MaskParams = DEFAULT_PARAMS
    chroma_detail: float = 0.25  # share of the lips' own a*b* variation kept under the shade
    sparkle_density: float = 0.035  # share of canvas pixels that glint (shimmer)
    seed: int = 20260101  # the glitter pattern; fixed so it never flickers between frames


class LipstickPainter:
    """Paints one face's lips. Stateless apart from a fixed glitter texture, so one painter may
    be shared by threads."""

    def __init__(self, options: PainterOptions | None = None) -> None:
        self.options = options or PainterOptions()
        self._sparkle = _sparkle_texture(self.options)

    def apply(
        self,
        frame_bgr: np.ndarray,
        face: Face | None,
        shade: Shade,
        intensity: float = 1.0,
        finish: Finish | str | None = None,
    ) -> np.ndarray:
        """A new BGR frame with the shade on the lips; the input is never modified.

        intensity in 0..1 blends between the original (0) and the full shade (1).
        finish overrides the shade's own finish. No face: an unchanged copy.
        """
        k = check_intensity(intensity)
        look = LOOKS[Finish.parse(finish) if finish is not None else shade.finish]
        out = frame_bgr.copy()
        if face is None or k == 0.0:
            return out
        self.paint_into(out, frame_bgr, face, shade, k, look)
        return out

    def paint_into(
        self, out: np.ndarray, frame_bgr: np.ndarray, face: Face, shade: Shade, k: float,
        look: FinishLook,
    ) -> None:
        xy = face.xy.astype(np.float64) - 0.5  # pixel centres at integers
        alpha_c, mf = lip_mask_canvas(frame_bgr, xy, self.options.mask)
        light_c = self._light_canvas(mf, xy, alpha_c, look)
        x0, y0, x1, y1 = mf.box
        if x1 <= x0 or y1 <= y0:
            return
        maps = cv2.warpAffine(
            np.dstack([alpha_c, light_c[0], light_c[1], np.zeros_like(alpha_c)]),
            mf.crop_matrix(), (x1 - x0, y1 - y0),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT,
        )
        alpha, gloss, sparkle = maps[..., 0], maps[..., 1], maps[..., 2]
        if float(alpha.max()) <= 1e-3:
            return
        crop = frame_bgr[y0:y1, x0:x1].astype(np.float32) * (1.0 / 255.0)
        painted = _shade_crop(crop, alpha, gloss, sparkle, shade, look, self.options)
        a = (alpha * k)[..., None]
        blended = crop + (painted - crop) * a
        out[y0:y1, x0:x1] = np.clip(blended * 255.0 + 0.5, 0, 255).astype(np.uint8)

    def _light_canvas(
        self, mf: MouthFrame, xy: np.ndarray, alpha_c: np.ndarray, look: FinishLook
    ) -> tuple[np.ndarray, np.ndarray]:
        """(gloss, sparkle) maps on the mouth canvas, 0..1, zero where not needed."""
        h, w = alpha_c.shape
        gloss = np.zeros_like(alpha_c)
        sparkle = np.zeros_like(alpha_c)
        if look.gloss > 0:
            gloss = _gloss_map(mf, xy, alpha_c, self.options.mask.canvas_width)
        if look.sparkle > 0:
            tex = self._sparkle
            # The fixed texture, tiled and anchored at the midpoint of the mouth corners in
            # canvas coordinates: those follow the mouth (position, roll, size), so the glints
            # stay on the same spots of the lips as the head moves, instead of flickering.
            mid = mf.to_canvas(0.5 * (xy[61] + xy[291])[None, :])[0]
            oy, ox = np.round(mid[::-1]).astype(int)
            rows = (np.arange(h) - oy) % tex.shape[0]
            cols = (np.arange(w) - ox) % tex.shape[1]
            sparkle = tex[np.ix_(rows, cols)]
        return gloss, sparkle


def _lip_centre_line(xy: np.ndarray, outer: tuple[int, ...], inner: tuple[int, ...],
                     toward_outer: float) -> np.ndarray:
    """Points part-way from the inner to the outer lip border (upper or lower lip)."""
    o = xy[list(outer[1:-1])]
    i = xy[list(inner[1:-1])]
    return i + (o - i) * toward_outer


def _gloss_map(mf: MouthFrame, xy: np.ndarray, alpha_c: np.ndarray, cw: float) -> np.ndarray:
    """Specular band along each lip's fullest part, brightest at the centre of the mouth.

    Lips are convex: with light from above the camera, the highlight runs along the lower lip
    a little below its middle and, weaker, along the upper lip; it follows the landmarks.
    """
    h, w = alpha_c.shape
    canvas = np.zeros((h, w), np.float32)
    for outer, inner, pos, strength in (
        (OUTER_LOWER, INNER_LOWER, 0.42, 1.0),
        (OUTER_UPPER, INNER_UPPER, 0.55, 0.45),
    ):
        line = mf.to_canvas(_lip_centre_line(xy, outer, inner, pos))
        n = len(line)
        # Brighter in the middle of the mouth, fading toward the corners.
        fade = np.sin(np.linspace(0.15, np.pi - 0.15, n - 1)) ** 1.5
        thick = max(round(0.03 * cw), 1)
        for j in range(n - 1):
            p, q = np.round(line[j:j + 2] * 4).astype(np.int32)
            cv2.line(canvas, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])),
                     (float(strength * fade[j]),), thick, cv2.LINE_AA, shift=2)
    sigma = 0.02 * cw
    canvas = np.asarray(cv2.GaussianBlur(canvas, (0, 0), sigma), dtype=np.float32)
    peak = float(canvas.max())
    if peak > 0:
        canvas /= peak
    return canvas * alpha_c


def _sparkle_texture(options: PainterOptions) -> np.ndarray:
    """A fixed glitter tile (float32 0..1): sparse points of random brightness, slightly soft."""
    rng = np.random.default_rng(options.seed)
    size = 256
    points = (rng.random((size, size)) < options.sparkle_density).astype(np.float32)
    points *= rng.uniform(0.4, 1.0, (size, size)).astype(np.float32)
    soft = cv2.GaussianBlur(points, (0, 0), 0.8)
    return np.clip(soft / max(float(soft.max()), 1e-6) * 1.6, 0.0, 1.0)


def _shade_crop(
    crop: np.ndarray, alpha: np.ndarray, gloss: np.ndarray, sparkle: np.ndarray, shade: Shade,
    look: FinishLook, options: PainterOptions,
) -> np.ndarray:
    """The fully painted crop (BGR float 0..1) before blending with alpha * intensity."""
    lab = cv2.cvtColor(crop, cv2.COLOR_BGR2LAB)
    L, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    w = alpha * alpha  # weight the lips' statistics toward the solid interior
    ws = float(w.sum()) + 1e-6
    lm, am, bm = (float((c * w).sum() / ws) for c in (L, a, b))
    target = srgb_to_lab(np.array(shade.rgb, dtype=np.float64))
    # Lightness: the shade's, plus the lips' own variation (shading, texture), with original
    # highlights compressed for matte (a matte lipstick scatters instead of reflecting).
    dl = L - lm
    dl = np.where(dl > 0, look.highlight_cap * np.tanh(dl / max(look.highlight_cap, 1e-3)), dl)
    dl = look.detail * dl
    # Compression skews the variation; re-centre it so the lips' mean lands on the shade.
    dl -= float((dl * w).sum() / ws)
    L2 = target[0] + dl
    # Chroma: the shade's, keeping a little of the lips' own variation so it is not flat paint.
    cd = options.chroma_detail
    a2 = target[1] + cd * (a - am)
    b2 = target[2] + cd * (b - bm)
    if look.gloss > 0:
        # Specular: toward white, a little more where the original already shone.
        shine = np.clip(dl / 20.0, 0.0, 1.0)
        g = np.clip(look.gloss * gloss * (0.4 + 1.2 * shine), 0.0, 0.95)
        L2 = L2 + (100.0 - L2) * g
        a2 = a2 * (1.0 - 0.7 * g)
        b2 = b2 * (1.0 - 0.7 * g)
    if look.sparkle > 0:
        s = look.sparkle * sparkle
        L2 = L2 + (100.0 - L2) * s * 0.8
        a2 = a2 * (1.0 - 0.4 * s)
        b2 = b2 * (1.0 - 0.4 * s)
    painted = cv2.cvtColor(
        np.dstack([np.clip(L2, 0, 100), a2, b2]).astype(np.float32), cv2.COLOR_LAB2BGR
    )
    return np.clip(painted, 0.0, 1.0)
