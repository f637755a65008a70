"""LipstickPainter: a shade and finish blended onto the lips in Lab, inside the lips' box only."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vision.landmarks import Face
from vision.lipstick.color import srgb_to_lab
from vision.lipstick.contour import OUTER_UPPER, LipSplines
from vision.lipstick.mask import DEFAULT_PARAMS, MaskParams, MouthFrame, lip_layers_canvas
from vision.lipstick.shades import Finish, Shade, check_intensity


@dataclass(frozen=True)
class FinishLook:
    """How a finish treats the lips' own lightness and adds light.

    detail: share of the original broad lightness variation kept (shading, lighting).
    highlight_cap: original broad highlights above the lips' mean are compressed to this (matte).
    texture / texture_cap: the fine detail (lip lines, grain: the original minus its blur at
    2.5% of the mouth width) is kept apart from the shading, so matte is not a flat sticker.
    gloss: strength of the specular highlight along the lip shape (share of the way to white).
    sparkle: strength of the per-position glitter.
    """

    detail: float
    highlight_cap: float
    gloss: float
    sparkle: float
    texture: float = 1.0  # share of the lips' own fine luminance detail (lines, grain) kept
    texture_cap: float = 12.0  # ... clipped to +-this L* (an original glint is not texture)


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
        self._sparkle_tiled = np.tile(self._sparkle, (2, 2))
        # The box (x0, y0, x1, y1) the last apply() wrote, None when it changed nothing.
        self.last_box: tuple[int, int, int, int] | None = None

    def apply(
        self,
        frame_bgr: np.ndarray,
        face: Face | None,
        shade: Shade,
        intensity: float = 1.0,
        finish: Finish | str | None = None,
        *,
        in_place: bool = False,
    ) -> np.ndarray:
        """A new BGR frame with the shade on the lips; the input is never modified unless
        in_place (then it is painted and returned: no full-frame copy, for a frame the caller
        owns, as the glasses renderer's in_place).

        intensity in 0..1 blends between the original (0) and the full shade (1).
        finish overrides the shade's own finish. No face: an unchanged copy (or the frame).
        """
        k = check_intensity(intensity)
        look = LOOKS[Finish.parse(finish) if finish is not None else shade.finish]
        self.last_box = None
        # paint_into reads every input pixel (mask, crop) before writing the lips' box, so the
        # frame can be its own output.
        out = frame_bgr if in_place else frame_bgr.copy()
        if face is None or k == 0.0:
            return out
        self.paint_into(out, frame_bgr, face, shade, k, look)
        return out

    def paint_into(
        self, out: np.ndarray, frame_bgr: np.ndarray, face: Face, shade: Shade, k: float,
        look: FinishLook,
    ) -> None:
        xy = face.xy.astype(np.float64) - 0.5  # pixel centres at integers
        splines = LipSplines.of(xy)
        layers = lip_layers_canvas(frame_bgr, xy, self.options.mask, splines=splines)
        alpha_c, mf = layers.alpha, layers.frame
        light_c = self._light_canvas(mf, xy, splines, alpha_c, look)
        x0, y0, x1, y1 = mf.box
        if x1 <= x0 or y1 <= y0:
            return
        maps = cv2.warpAffine(
            np.dstack([alpha_c, light_c[0], light_c[1], layers.rim]),
            mf.crop_matrix(), (x1 - x0, y1 - y0),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT,
        )
        alpha, gloss, sparkle, rim = (maps[..., i] for i in range(4))
        if float(alpha.max()) <= 1e-3:
            return
        crop = frame_bgr[y0:y1, x0:x1].astype(np.float32) * (1.0 / 255.0)
        mw = float(np.linalg.norm(xy[61] - xy[291]))
        # Full colour where the mask is; the rest of the rim (lip tissue beside the opening)
        # takes the shade in its own shading, by its lip share.
        r = np.clip(rim - alpha, 0.0, 1.0) * k
        ys, xs = np.nonzero(r > 1e-3)
        box = (int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1) if len(ys) \
            else None
        painted, tinted = _shade_crop(crop, alpha, gloss, sparkle, shade, look, self.options, mw,
                                      box)
        blended = crop + (painted - crop) * (alpha * k)[..., None]
        if box is not None:
            win = np.s_[box[0]:box[1], box[2]:box[3]]
            blended[win] += (tinted - crop[win]) * r[win][..., None]
        out[y0:y1, x0:x1] = np.clip(blended * 255.0 + 0.5, 0, 255).astype(np.uint8)
        self.last_box = (int(x0), int(y0), int(x1), int(y1))

    def _light_canvas(
        self, mf: MouthFrame, xy: np.ndarray, splines: LipSplines, alpha_c: np.ndarray,
        look: FinishLook,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(gloss, sparkle) maps on the mouth canvas, 0..1, zero where not needed."""
        h, w = alpha_c.shape
        gloss = np.zeros_like(alpha_c)
        sparkle = np.zeros_like(alpha_c)
        if look.gloss > 0:
            gloss = _gloss_map(mf, xy, splines, alpha_c, self.options.mask.canvas_width)
        if look.sparkle > 0:
            tex = self._sparkle
            # The fixed texture, tiled and anchored at the midpoint of the mouth corners in
            # canvas coordinates: those follow the mouth (position, roll, size), so the glints
            # stay on the same spots of the lips as the head moves, instead of flickering.
            mid = mf.to_canvas(0.5 * (xy[61] + xy[291])[None, :])[0]
            oy, ox = np.round(mid[::-1]).astype(int)
            th, tw = tex.shape
            r0, c0 = int(-oy) % th, int(-ox) % tw
            if h <= th and w <= tw:  # a window of the 2x2 tiling: a view, no gather
                sparkle = self._sparkle_tiled[r0:r0 + h, c0:c0 + w]
            else:  # a canvas larger than the tile (a face filling the frame)
                sparkle = tex[np.ix_((np.arange(h) + r0) % th, (np.arange(w) + c0) % tw)]
        return gloss, sparkle


# Camera space of the lip shading model: x right, y up, z toward the camera. The light comes
# from above and in front of the face (a ceiling light, a window, a ring light above a screen).
_LIGHT = np.array([0.0, 0.55, 1.0]) / np.linalg.norm([0.0, 0.55, 1.0])
_HALF = (_LIGHT + np.array([0.0, 0.0, 1.0])) / np.linalg.norm(_LIGHT + np.array([0.0, 0.0, 1.0]))
_SHININESS = 24  # Blinn-Phong exponent of a wet gloss (an integer: powered by squaring)
_BULGE = 1.6  # the lips' cross-section slope at their borders (normal tilt), vertical
_WRAP = 1.1  # ... and toward the mouth corners (the lips wrap around the teeth arch)


def _curve_distance(curves: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Distance in canvas pixels to the nearest of (k, m, 2) open polylines (5x5 chamfer:
    within 2% of Euclidean, plenty for a blurred shading model, a fifth of the exact cost)."""
    img = np.full((size[1], size[0]), 255, np.uint8)
    cv2.polylines(img, list(np.round(curves * 16).astype(np.int32)), False, (0,), 1,
                  cv2.LINE_8, shift=4)
    return cv2.distanceTransform(img, cv2.DIST_L2, cv2.DIST_MASK_5)


def _power(x: np.ndarray, n: int) -> np.ndarray:
    """x ** n for a whole n >= 1 by repeated squaring: a few multiplies instead of a
    transcendental pow per pixel."""
    out: np.ndarray | None = None
    base = x
    while n:
        if n & 1:
            out = base if out is None else out * base
        n >>= 1
        if n:
            base = base * base
    assert out is not None
    return out


def _gloss_map(
    mf: MouthFrame, xy: np.ndarray, splines: LipSplines, alpha_c: np.ndarray, cw: float
) -> np.ndarray:
    """Specular term (0..1) of a Blinn-Phong light on a surface normal estimated for each lip.

    Each lip is modelled as a swelling between its inner and outer contour: across the lip
    (t = 0 at the inner border, 1 at the outer) its normal tilts from facing into the mouth
    to facing out (up or down), and along the mouth it turns sideways toward the corners. The
    light is above the camera, so the highlight sits where the lower lip's upper surface faces
    between the light and the camera, and fades toward the corners where the lips turn away.
    The painter modulates it by the lips' own shading and texture.

    Worked out on a canvas of half the mouth canvas's size and scaled up: the term is smooth
    (blurred by about a pixel of the full canvas afterwards), and a quarter of the pixels
    brought satin, gloss and shimmer under the landmark step's cost (benchmarks/lipstick.py).
    """
    h, w = alpha_c.shape
    hh, hw = (h + 1) // 2, (w + 1) // 2
    size = (hw, hh)
    # Full-canvas coordinates to the half canvas, pixel centres aligned as cv2.resize has them.
    # RINGS order: outer upper, outer lower, inner upper, inner lower.
    curves = mf.to_canvas(splines.curves.reshape(-1, 2)).reshape(4, -1, 2) * 0.5 - 0.25
    corners = mf.to_canvas(xy[[OUTER_UPPER[0], OUTER_UPPER[-1]]]) * 0.5 - 0.25
    u = (np.arange(hw, dtype=np.float32) - corners[0, 0]) / max(corners[1, 0] - corners[0, 0], 0.5)
    nx = np.broadcast_to(
        (_WRAP * np.sin(np.pi * (np.clip(u, 0.0, 1.0) - 0.5)))[None, :], (hh, hw)
    ).astype(np.float32)
    # Which lip each pixel is (1 lower, 2 upper), and its distances to the inner and outer
    # borders: the nearer of the two inner (outer) curves is its own lip's, as the other lies
    # across the opening (or the lip), and they meet at the corners. One pass for both lips.
    lip = np.zeros((hh, hw), np.uint8)
    for out_c, in_c, label in ((curves[1], curves[3], 1), (curves[0], curves[2], 2)):
        poly = np.vstack([out_c, in_c[::-1]])
        cv2.fillPoly(lip, [np.round(poly * 16).astype(np.int32)], (label,), cv2.LINE_8, shift=4)
    d_in = _curve_distance(curves[2:], size)
    d_out = _curve_distance(curves[:2], size)
    t = d_in / np.maximum(d_in + d_out, 1e-3)
    # Lower lip: up (+y) at its inner border, toward the camera mid-way, down at the outer
    # border; the upper lip the other way round.
    bulge = np.where(lip == 1, np.float32(_BULGE), np.float32(-_BULGE))
    ny = bulge * np.cos(np.float32(np.pi) * t)
    norm = np.sqrt(nx * nx + ny * ny + np.float32(1.0))
    ndh = (nx * np.float32(_HALF[0]) + ny * np.float32(_HALF[1]) + np.float32(_HALF[2])) / norm
    spec = _power(np.clip(ndh, 0.0, 1.0), _SHININESS)
    spec[lip == 0] = 0.0
    spec = np.asarray(cv2.GaussianBlur(spec, (0, 0), 0.003 * cw), np.float32)
    spec = np.asarray(cv2.resize(spec, (w, h), interpolation=cv2.INTER_LINEAR), np.float32)
    spec *= alpha_c
    # The finish's gloss strength is its brightest highlight, whatever the mouth's shape.
    peak = float(spec.max())
    return spec / peak if peak > 1e-3 else spec


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
    look: FinishLook, options: PainterOptions, mouth_px: float,
    rim_box: tuple[int, int, int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The fully painted crop and the rim's shaded paint over rim_box (y0, y1, x0, x1) of it
    (BGR float 0..1; empty without a box), before blending with alpha (rim) * intensity."""
    lab = cv2.cvtColor(crop, cv2.COLOR_BGR2LAB)
    L, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    w = alpha * alpha  # weight the lips' statistics toward the solid interior
    ws = float(w.sum()) + 1e-6
    lm, am, bm = (float((c * w).sum() / ws) for c in (L, a, b))
    target = srgb_to_lab(np.array(shade.rgb, dtype=np.float64))
    # Lightness: the shade's, plus the lips' own variation (shading, texture), with original
    # highlights compressed for matte (a matte lipstick scatters instead of reflecting).
    # Broad shading (the lips' form and the light) and fine texture (lines, grain) apart: the
    # finish compresses the shading's highlights, the texture is kept so matte is not flat.
    sigma = max(0.025 * mouth_px, 0.6)
    wb = cv2.GaussianBlur(w, (0, 0), sigma)
    local_l = cv2.GaussianBlur(L * w, (0, 0), sigma) / np.maximum(wb, 1e-4)
    smooth = np.where(w > 1e-3, local_l, L)
    fine = np.clip(L - smooth, -look.texture_cap, look.texture_cap) * look.texture

    def broad(dl: np.ndarray) -> np.ndarray:
        return look.detail * np.where(
            dl > 0, look.highlight_cap * np.tanh(dl / max(look.highlight_cap, 1e-3)), dl)

    dl = broad(smooth - lm) + fine
    # Compression skews the variation; re-centre it so the lips' mean lands on the shade.
    centre = float((dl * w).sum() / ws)
    dl -= centre
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
    # Rim (lip tissue beside the opening, much of it in shadow): the shade as painted on the
    # lip beside the pixel, times the pixel's own shading relative to that lip (a lightness
    # ratio; chroma follows the lightness down), so a slit stays the darkest line and takes
    # the shade's hue. The blend scales it by the pixel's lip share.
    if rim_box is None:
        return np.clip(painted, 0.0, 1.0), np.zeros((0, 0, 3), np.float32)
    win = np.s_[rim_box[0]:rim_box[1], rim_box[2]:rim_box[3]]
    lw = L[win]
    lip_l = np.maximum(np.where(wb[win] > 1e-3, local_l[win], lw), 1.0)
    shaded = np.clip(lw / lip_l, 0.0, 1.5)
    fade_ab = np.minimum(shaded, 1.0)
    tinted = cv2.cvtColor(np.dstack([
        np.clip((target[0] + broad(lip_l - lm) - centre) * shaded, 0, 100),
        target[1] * fade_ab, target[2] * fade_ab,
    ]).astype(np.float32), cv2.COLOR_LAB2BGR)
    return np.clip(painted, 0.0, 1.0), np.clip(tinted, 0.0, 1.0)
