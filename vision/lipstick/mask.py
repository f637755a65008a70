"""Lip mask: smooth landmark contours, the mouth opening refined with pixel evidence, feathered."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vision.landmarks import Face
from vision.lipstick.contour import (
    INNER_LOWER,
    INNER_UPPER,
    OUTER_LOWER,
    OUTER_UPPER,
    LipSplines,
    mouth_width,
)
from vision.lipstick.evidence import is_closed, mouth_opening_evidence, refine_outer


@dataclass(frozen=True)
class MaskParams:
    """Tolerances as fractions of the mouth width (corner to corner), so they hold at any scale
    (0.01 is about 0.8 px on the 80 px mouths of faces/lips).

    Calibrated on faces/lips (docs/lipstick.md has the numbers and the trade-off); each is a
    physical quantity (an uncertainty, a margin, a ratio), not a free knob.
    """

    canvas_width: float = 192.0  # mouth width in working-canvas pixels (subpixel accuracy)
    pad: float = 0.12  # canvas margin around the outer contour
    feather: float = 0.015  # outer edge ramp width, centred on the border
    outer_sigma: float = 0.005  # outer landmark uncertainty (colour fusion prior)
    outer_llr_clip: float = 2.0  # most colour may move the outer border, in sigmas
    outer_band: float = 0.06  # colour evidence counts this close to the outer border
    band: float = 0.05  # how far from the inner landmarks the opening is searched
    trust: float = 0.03  # depth inside the inner contour that is always opening (tongue-safe)
    dark_ratio: float = 0.5  # a gap is darker than this share of the lips' lightness
    run_along: float = 0.08  # gaps this long along the mouth are bridged; shorter runs dropped
    inner_sigma: float = 0.003  # inner landmark uncertainty (colour fusion prior)
    inner_llr_clip: float = 3.0  # most colour may push the opening outward, in sigmas
    inner_llr_reclaim: float = 4.0  # most colour may reclaim lip inside the contour, in sigmas
    inner_gap: float = 0.0075  # colour-free margin next to the opening (label quantisation)
    inner_feather: float = 0.005  # ramp from the margin to full colour
    slit_span: float = 0.5  # closed mouth: lips part only this share of the half-width from mid
    slit_gap: float = 0.0125  # closed mouth: margin next to the slit (its pixels are mixed)
    # The rim next to the opening (the colour-free margin, its ramp and the opening's own edge
    # pixels) is painted by its lip-tissue share, judged by chromaticity (shading-free).
    rim_reach: float = 0.03  # how far into the opening lip tissue is looked for (= trust)
    rim_colour_sigma: float = 0.03  # reach of the local mean of the lips' colour
    rim_min_chroma: float = 0.03  # lips less chromatic than this: no tissue share is trusted
    rim_lighter: float = 10.0  # L* above the lips beside it by which a pixel is no lip tissue
    rim_min_teeth_px: int = 20  # canvas pixels of teeth needed to take their colour as reference


DEFAULT_PARAMS = MaskParams()
_MIN_MOUTH_PX = 3.0  # smaller mouths are not painted (nothing a person could see)
_MAX_CANVAS = 512.0  # canvas pixels, longest side of the lips (before padding)


@dataclass(frozen=True)
class MouthFrame:
    """A canvas aligned with the mouth: corners on one horizontal row, mouth width fixed.

    matrix: (2, 3) affine from frame pixel-index coordinates to canvas coordinates.
    box: (x0, y0, x1, y1) integer frame region the canvas covers (clipped to the frame).
    """

    matrix: np.ndarray
    size: tuple[int, int]
    box: tuple[int, int, int, int]
    scale: float

    def to_canvas(self, pts: np.ndarray) -> np.ndarray:
        return pts @ self.matrix[:, :2].T + self.matrix[:, 2]

    def crop_matrix(self) -> np.ndarray:
        """Affine from crop (box) coordinates to canvas coordinates."""
        m = self.matrix.copy()
        m[:, 2] += m[:, :2] @ np.array([self.box[0], self.box[1]], dtype=np.float64)
        return m


def mouth_frame(xy: np.ndarray, frame_size: tuple[int, int], params: MaskParams) -> MouthFrame:
    """Canvas geometry for the (478, 2) landmarks (pixel-index coordinates) in a (w, h) frame."""
    left, right = xy[OUTER_UPPER[0]], xy[OUTER_UPPER[-1]]
    d = right - left
    mw = max(float(np.hypot(*d)), 1e-3)
    c, si = d[0] / mw, d[1] / mw
    unit = np.array([[c, si], [-si, c]])
    lips = xy[list(OUTER_UPPER + OUTER_LOWER)]
    extent = float(np.ptp(lips @ unit.T, axis=0).max())
    # Normally the mouth is canvas_width wide; a face seen edge-on (corners nearly overlapping)
    # must not blow the canvas up, so its longest side is capped.
    s = min(params.canvas_width / mw, _MAX_CANVAS / max(extent, 1e-3))
    rot = s * unit
    r = lips @ rot.T
    pad = params.pad * params.canvas_width
    lo = r.min(axis=0) - pad
    hi = r.max(axis=0) + pad
    matrix = np.hstack([rot, -lo[:, None]])
    size = (int(np.ceil(hi[0] - lo[0])), int(np.ceil(hi[1] - lo[1])))
    # Frame region under the canvas: its four corners mapped back.
    inv = cv2.invertAffineTransform(matrix)
    corners = np.array([[0, 0], [size[0], 0], [0, size[1]], [size[0], size[1]]], np.float64)
    fc = corners @ inv[:, :2].T + inv[:, 2]
    w, h = frame_size
    x0, y0 = np.clip(np.floor(fc.min(axis=0)).astype(int) - 1, 0, [w, h])
    x1, y1 = np.clip(np.ceil(fc.max(axis=0)).astype(int) + 2, 0, [w, h])
    return MouthFrame(matrix=matrix, size=size, box=(int(x0), int(y0), int(x1), int(y1)), scale=s)


def _signed_distance(poly: np.ndarray, size: tuple[int, int], precise: bool = True
                     ) -> np.ndarray:
    """Signed distance in canvas pixels to a closed polygon, > 0 inside.

    precise=False uses the 5x5 chamfer distance (within 0.04 px of Euclidean up to 2 px,
    2% beyond), a fifth of the cost; the outer contour keeps the exact one, whose thin
    wedges at the mouth corners decide single pixels."""
    inside = np.zeros((size[1], size[0]), np.uint8)
    cv2.fillPoly(inside, [np.round(poly * 16).astype(np.int32)], (1,), cv2.LINE_8, shift=4)
    mask = cv2.DIST_MASK_PRECISE if precise else cv2.DIST_MASK_5
    din = cv2.distanceTransform(inside, cv2.DIST_L2, mask)
    dout = cv2.distanceTransform(1 - inside, cv2.DIST_L2, mask)
    return din - dout


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


@dataclass(frozen=True)
class LipLayers:
    """What the painter needs on the mouth canvas (float32, 0..1 each).

    alpha: full colour (the lip mask). rim: the lip-tissue share of the band next to the mouth
    opening that the mask leaves out (its colour-free margin, the lips' shadowed inner edge,
    the slit between closed lips); the painter paints it with the shade in the pixel's own
    shading, so a dark gap stays dark, and teeth (no lip share) are left alone.
    """

    alpha: np.ndarray
    rim: np.ndarray
    frame: MouthFrame


def lip_mask_canvas(
    frame_bgr: np.ndarray, xy: np.ndarray, params: MaskParams = DEFAULT_PARAMS
) -> tuple[np.ndarray, MouthFrame]:
    """Lip alpha (float32, 0..1) on the mouth canvas, and the canvas geometry.

    xy: (478, 2) landmarks in pixel-index coordinates (pixel centres at integers).
    """
    layers = lip_layers_canvas(frame_bgr, xy, params, with_rim=False)
    return layers.alpha, layers.frame


def lip_layers_canvas(
    frame_bgr: np.ndarray, xy: np.ndarray, params: MaskParams = DEFAULT_PARAMS,
    with_rim: bool = True, splines: LipSplines | None = None,
) -> LipLayers:
    """Lip alpha and the rim's lip-tissue share on the mouth canvas (see LipLayers).
    with_rim=False leaves the rim empty (the mask alone costs less); splines: the face's lip
    splines when the caller has them already (LipSplines.of(xy))."""
    h, w = frame_bgr.shape[:2]
    mf = mouth_frame(xy, (w, h), params)
    outside = mf.box[2] <= mf.box[0] or mf.box[3] <= mf.box[1]
    if outside or mouth_width(xy) < _MIN_MOUTH_PX:
        empty = np.zeros((mf.size[1], mf.size[0]), np.float32)
        return LipLayers(empty, empty, mf)
    cw = params.canvas_width
    splines = splines if splines is not None else LipSplines.of(xy)
    sd_outer = _signed_distance(mf.to_canvas(splines.outer()), mf.size)
    sd_inner = _signed_distance(mf.to_canvas(splines.inner()), mf.size, precise=False)
    x0, y0, x1, y1 = mf.box
    crop = frame_bgr[y0:y1, x0:x1]
    canvas = cv2.warpAffine(
        crop, mf.crop_matrix(), mf.size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    lab = cv2.cvtColor(canvas.astype(np.float32) * (1.0 / 255.0), cv2.COLOR_BGR2LAB)
    opening, _ = mouth_opening_evidence(lab, sd_outer, sd_inner, params)
    if params.outer_llr_clip > 0:
        sd_outer = refine_outer(lab, sd_outer, sd_inner, params)
    outer_alpha = _smoothstep(sd_outer / (params.feather * cw) + 0.5)
    gap = (cv2.distanceTransform((~opening).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_5)
           if opening.any() else np.full(opening.shape, 1e4, np.float32))
    # A slit between closed lips is a dark line about a pixel wide: the pixels either side
    # are part lip, part dark (and the line as labelled is wider than its darkest pixels), so
    # they get a wider colour-free margin than the edge of an open mouth does.
    margin = params.slit_gap if is_closed(sd_inner, params) else params.inner_gap
    inner_alpha = _smoothstep((gap - margin * cw) / (params.inner_feather * cw))
    alpha = (outer_alpha * inner_alpha).astype(np.float32)
    rim = (_rim(canvas, lab, opening, gap, outer_alpha, inner_alpha, params) if with_rim
           else np.zeros_like(alpha))
    return LipLayers(alpha, rim, mf)


# sRGB code value -> linear light (the exact sRGB curve): chromaticity, and means that mix light.
_LINEAR = np.where(np.arange(256) / 255.0 <= 0.04045, np.arange(256) / 255.0 / 12.92,
                   ((np.arange(256) / 255.0 + 0.055) / 1.055) ** 2.4).astype(np.float32)


def _rg(lin: np.ndarray) -> np.ndarray:
    """(..., 2) r, g chromaticity of (..., 3) linear BGR: the colour without its shading."""
    total = lin.sum(axis=-1, keepdims=True) + 1e-4
    return lin[..., 2:0:-1] / total


def _local_lip_light(canvas_bgr: np.ndarray, weight: np.ndarray, sigma: float, ys: np.ndarray,
                     xs: np.ndarray) -> np.ndarray:
    """(n, 3) weighted Gaussian mean of the linear light (BGR) at the pixels (ys, xs).

    Worked on a 4x smaller grid and read back bilinearly at those pixels only: the mean is
    smooth at that scale, and full-size wide kernels would cost more than the whole mask."""
    h, w = weight.shape
    small = (max(w // 4, 1), max(h // 4, 1))
    s = max(sigma / 4.0, 0.5)
    ws = cv2.resize(weight, small, interpolation=cv2.INTER_AREA)
    lin = _LINEAR[cv2.resize(canvas_bgr, small, interpolation=cv2.INTER_AREA)]
    stack = cv2.GaussianBlur(np.dstack([lin * ws[..., None], ws]), (0, 0), s)
    # Pixel centres of the full grid on the small one.
    mx = ((xs + 0.5) * (small[0] / w) - 0.5).astype(np.float32)[:, None]
    my = ((ys + 0.5) * (small[1] / h) - 0.5).astype(np.float32)[:, None]
    at = cv2.remap(stack, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[:, 0]
    return at[:, :3] / np.maximum(at[:, 3:], 1e-6)


def _rim(canvas_bgr: np.ndarray, lab: np.ndarray, opening: np.ndarray, gap: np.ndarray,
         outer_alpha: np.ndarray, inner_alpha: np.ndarray, params: MaskParams) -> np.ndarray:
    """Lip-tissue share (0..1) of the band between full colour and the mouth opening.

    The mask leaves that band out (it is where teeth and the cavity begin), but most of it is
    lip: the lips' edge curving into shadow, and between closed lips the whole dark line is
    shadowed lip tissue. Left alone it showed the lips' own colour as a ring (and as dashes
    along closed lips). Shading changes a pixel's lightness, not its chromaticity, so each
    band pixel's lip share is its rg chromaticity projected between the lips' own (a local
    mean) and the teeth's (or the achromatic point when no teeth show: the unlit cavity has
    no reliable colour); the painter paints that share with the shade at the pixel's own
    shading. Inside the opening only lip-coloured pixels joined to the lips through
    lip-coloured pixels count (the lips' shadowed inner edge, the whole slit between closed
    lips), and only within rim_reach, the depth past which the mask itself is sure of the
    opening: a red tongue behind the teeth or the cavity is not joined, and deep is never lip.
    """
    cw = params.canvas_width
    out = np.zeros_like(outer_alpha, dtype=np.float32)
    if not opening.any() or params.rim_reach <= 0:
        return out
    reach = params.rim_reach * cw
    # Within rim_reach of the opening's edge on its inside (a coarse distance is enough for a
    # limit), and of the colour-free margin and its ramp outside.
    depth = cv2.distanceTransform(opening.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_3)
    band = (outer_alpha > 0.01) & (inner_alpha < 0.999) & (gap < 2.0 * reach) & (depth < reach)
    solid = (outer_alpha * inner_alpha > 0.99) & (gap < 3.0 * reach)
    by, bx = np.nonzero(band)
    if not len(by) or not solid.any():
        return out
    L = lab[..., 0]
    means = _local_lip_light(canvas_bgr, solid.astype(np.float32), params.rim_colour_sigma * cw,
                             by, bx)
    # The lips' local lightness, from their mean light (CIE L*, Y of linear sRGB).
    lip_y = means @ np.array([0.0722, 0.7152, 0.2126], np.float32)
    lip_l = 116.0 * np.cbrt(np.maximum(lip_y, 0.008856)) - 16.0
    teeth = np.flatnonzero(opening & (float(L[solid].mean()) < L))
    ref = (_rg(_LINEAR[canvas_bgr.reshape(-1, 3)[teeth[:: max(len(teeth) // 500, 1)]]]
               .mean(axis=0))
           if len(teeth) >= params.rim_min_teeth_px else np.full(2, 1.0 / 3.0, np.float32))
    px = _rg(_LINEAR[canvas_bgr[by, bx]]) - ref
    lip = _rg(means) - ref
    cov = (px * lip).sum(axis=1) / np.maximum((lip * lip).sum(axis=1), params.rim_min_chroma ** 2)
    # Lip tissue beside the opening is lit at most like the lips next to it: a band pixel
    # lighter than them is part tooth (or a glint), so its lip share fades out over
    # rim_lighter L*. (Dark mixes, lip with cavity or the slit, keep theirs.)
    cov = (np.clip(cov, 0.0, 1.0) * np.clip(1.0 - (L[by, bx] - lip_l) / params.rim_lighter,
                                            0.0, 1.0) * outer_alpha[by, bx])
    # Grow from the lips into the opening through lip-coloured pixels, a canvas pixel a step
    # (so a pixel cut off from the lips by teeth or the cavity is not joined).
    tissue = np.zeros(band.shape, np.uint8)
    tissue[by, bx] = cov > 0.5
    joined = np.where(opening, 0, tissue).astype(np.uint8)
    kernel = np.ones((3, 3), np.uint8)
    for _ in range(int(np.ceil(reach))):
        joined = np.logical_and(cv2.dilate(joined, kernel), tissue).astype(np.uint8)
    out[by, bx] = np.where(opening[by, bx] & (joined[by, bx] == 0), 0.0, cov)
    return out


def lip_mask_crop(
    frame_bgr: np.ndarray, face: Face, params: MaskParams = DEFAULT_PARAMS
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Lip alpha over the lips' frame region only: (alpha (h, w) float32, box x0, y0, x1, y1)."""
    xy = face.xy.astype(np.float64) - 0.5  # MediaPipe x*width has pixel centres at +0.5
    alpha_c, mf = lip_mask_canvas(frame_bgr, xy, params)
    x0, y0, x1, y1 = mf.box
    if x1 <= x0 or y1 <= y0:
        return np.zeros((max(y1 - y0, 0), max(x1 - x0, 0)), np.float32), mf.box
    alpha = cv2.warpAffine(
        alpha_c,
        mf.crop_matrix(),
        (x1 - x0, y1 - y0),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0.0,),
    )
    return alpha, mf.box


def lip_mask(frame_bgr: np.ndarray, face: Face, params: MaskParams = DEFAULT_PARAMS) -> np.ndarray:
    """Full-frame float32 (H, W) lip alpha, 0..1: outer lips minus the mouth opening, feathered."""
    h, w = frame_bgr.shape[:2]
    out = np.zeros((h, w), np.float32)
    alpha, (x0, y0, x1, y1) = lip_mask_crop(frame_bgr, face, params)
    out[y0:y1, x0:x1] = alpha
    return out


def lip_layers(
    frame_bgr: np.ndarray, face: Face, params: MaskParams = DEFAULT_PARAMS
) -> tuple[np.ndarray, np.ndarray]:
    """Full-frame float32 (H, W) maps: the lip alpha (as lip_mask) and the rim's lip-tissue
    share next to the mouth opening (see LipLayers)."""
    h, w = frame_bgr.shape[:2]
    out = np.zeros((2, h, w), np.float32)
    layers = lip_layers_canvas(frame_bgr, face.xy.astype(np.float64) - 0.5, params)
    x0, y0, x1, y1 = layers.frame.box
    if x1 > x0 and y1 > y0:
        for i, m in enumerate((layers.alpha, layers.rim)):
            out[i, y0:y1, x0:x1] = cv2.warpAffine(
                m, layers.frame.crop_matrix(), (x1 - x0, y1 - y0),
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT,
                borderValue=(0.0,))
    return out[0], out[1]


def polygon_lip_mask(face: Face, size: tuple[int, int]) -> np.ndarray:
    """Baseline: the plain polygon between the outer and inner lip landmarks, uint8 0/1 (H, W)."""
    outer = face.xy[list(OUTER_UPPER) + list(OUTER_LOWER[::-1][1:-1])]
    out = np.zeros((size[1], size[0]), np.uint8)
    cv2.fillPoly(out, [np.round(outer).astype(np.int32)], (1,))
    inner = face.xy[list(INNER_UPPER) + list(INNER_LOWER[::-1][1:-1])]
    cv2.fillPoly(out, [np.round(inner).astype(np.int32)], (0,))
    return out


__all__ = [
    "DEFAULT_PARAMS",
    "LipLayers",
    "MaskParams",
    "MouthFrame",
    "lip_layers",
    "lip_layers_canvas",
    "lip_mask",
    "lip_mask_canvas",
    "lip_mask_crop",
    "mouth_width",
    "polygon_lip_mask",
]
