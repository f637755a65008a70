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
    inner_contour,
    mouth_width,
    outer_contour,
)


@dataclass(frozen=True)
class MaskParams:
    """Tolerances as fractions of the mouth width (corner to corner), so they hold at any scale.

    Calibrated on faces/lips (see docs/lipstick.md); each is a physical quantity, not a free knob.
    """

    canvas_width: float = 192.0  # mouth width in working-canvas pixels (subpixel accuracy)
    pad: float = 0.12  # canvas margin around the outer contour
    feather: float = 0.015  # outer edge ramp width (about 1 px on a 70 px mouth)
    outer_offset: float = 0.0  # grows (+) or shrinks (-) the outer contour
    band: float = 0.05  # how far from the inner landmarks the mouth opening is searched
    trust: float = 0.015  # depth inside the inner contour that is always mouth (tongue-safe)
    dark_depth: float = 0.5  # a valley pixel is below min + depth * (lip - min) lightness
    dark_ratio: float = 0.5  # ...and below this share of the lips' lightness (a hole, not a fold)
    min_contrast: float = 8.0  # L* units a valley must be darker than the lips to count
    teeth_chroma: float = 0.5  # a pixel with a* under this share of the lips' a* is not lip
    close_along: float = 0.04  # gaps this long along the mouth are bridged in the opening
    inner_feather: float = 0.02  # ramp width between lips and mouth opening
    inner_gap: float = 0.005  # distance kept free of colour next to the opening
    inner_sigma: float = 0.01
    inner_llr_clip: float = 3.0
    inner_llr_reclaim: float = 3.0
    use_lda: float = 1.0
    outer_sigma: float = 0.005  # landmark uncertainty of the outer border (fusion prior)
    outer_llr_clip: float = 2.0  # most the colour evidence may move the border, in sigmas
    outer_band: float = 0.06  # colour evidence is used this close to the outer border


DEFAULT_PARAMS = MaskParams()


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
    s = params.canvas_width / mw
    c, si = d[0] / mw, d[1] / mw
    rot = s * np.array([[c, si], [-si, c]])
    lips = xy[list(OUTER_UPPER + OUTER_LOWER)]
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


def _signed_distance(poly: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Signed distance in canvas pixels to a closed polygon, > 0 inside."""
    inside = np.zeros((size[1], size[0]), np.uint8)
    cv2.fillPoly(inside, [np.round(poly * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
    din = cv2.distanceTransform(inside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    dout = cv2.distanceTransform(1 - inside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return din - dout


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _column_stat(values: np.ndarray, where: np.ndarray, fn: str) -> np.ndarray:
    """Per canvas column min or mean of values where the mask is set; NaN for empty columns."""
    if fn == "min":
        out = np.where(where, values, np.inf).min(axis=0)
        out[np.isinf(out)] = np.nan
        return out
    n = where.sum(axis=0)
    s = np.where(where, values, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def _mouth_opening(
    lab: np.ndarray, sd_outer: np.ndarray, sd_inner: np.ndarray, params: MaskParams
) -> np.ndarray:
    """Boolean canvas mask of the mouth opening (teeth, tongue, cavity, the dark lip line).

    Deep inside the inner landmark contour is always opening. Near it, per canvas column (the
    canvas is mouth-aligned, so a column crosses the lips top to bottom), a pixel is opening when
    it is darker than halfway between the column's darkest point and the lips around it, or much
    less red than the lips (teeth); it must connect to the landmark opening or the dark line.
    """
    cw = params.canvas_width
    L, a = lab[..., 0], lab[..., 1]
    trusted = sd_inner > params.trust * cw
    band = (sd_inner > -params.band * cw) & (sd_outer > 0) & ~trusted
    lip_ref = (sd_inner < -params.band * cw) & (sd_outer > 0.02 * cw)
    rows = np.arange(L.shape[0])[:, None]
    # Upper and lower lip separately: the upper lip is usually in shadow.
    centre = _column_stat(np.broadcast_to(rows, L.shape).astype(np.float32), sd_inner > -2, "mean")
    centre = np.where(np.isnan(centre), np.nanmean(centre) if np.isfinite(centre).any() else 0.0,
                      centre)
    upper = lip_ref & (rows < centre[None, :])
    lower = lip_ref & (rows >= centre[None, :])
    l_up, l_lo = _column_stat(L, upper, "mean"), _column_stat(L, lower, "mean")
    l_ref = np.fmin(l_up, l_lo)
    a_ref = _column_stat(a, lip_ref, "mean")
    l_min = _column_stat(L, band | trusted, "min")
    # Columns lacking reference (near the corners) borrow the nearest measured value.
    l_ref, a_ref, l_min = (_fill_nan(v) for v in (l_ref, a_ref, l_min))
    # Smooth along the mouth so one noisy column cannot open a hole.
    k = max(int(0.04 * cw) | 1, 3)
    l_ref, a_ref, l_min = (
        cv2.GaussianBlur(v[None, :].astype(np.float32), (k, 1), 0)[0] for v in (l_ref, a_ref, l_min)
    )
    contrast = l_ref - l_min
    thresh = l_min + params.dark_depth * contrast
    thresh = np.minimum(thresh, params.dark_ratio * l_ref)
    dark = (L < thresh[None, :]) & (contrast[None, :] > params.min_contrast)
    pale = a < params.teeth_chroma * a_ref[None, :]
    cand = (band & (dark | pale)).astype(np.uint8)
    # Pixel noise makes a dark line ragged; a gap is continuous along the mouth, so close
    # along the canvas rows (the mouth axis) before judging connectivity.
    kw = max(int(params.close_along * cw) | 1, 3)
    cand = cv2.morphologyEx(cand, cv2.MORPH_CLOSE, np.ones((1, kw), np.uint8)) > 0
    cand &= band
    seeds = trusted | (cand & (L <= l_min[None, :] + 1.0))
    n, lbl = cv2.connectedComponents((cand | seeds).astype(np.uint8), connectivity=8)
    if n <= 1:
        return trusted
    keep = np.zeros(n, bool)
    keep[np.unique(lbl[seeds])] = True
    keep[0] = False
    return keep[lbl] | trusted


def _refine_outer(
    lab: np.ndarray, sd_outer: np.ndarray, sd_inner: np.ndarray, params: MaskParams
) -> np.ndarray:
    """Outer signed distance moved by colour evidence (lips vs skin), canvas pixels.

    Two Gaussians with a shared covariance (Fisher LDA) are fitted in Lab to confident lip
    pixels and to a ring of skin just outside; their log-likelihood ratio, in units of the
    landmark uncertainty, shifts the border. Weakly separable colours (bare lips on pale skin)
    give a small ratio, so the landmarks then keep the say: the fusion calibrates itself.
    """
    cw = params.canvas_width
    lips = (sd_outer > 0.04 * cw) & (sd_inner < -params.band * cw)
    skin = (sd_outer < -0.04 * cw) & (sd_outer > -params.pad * cw * 0.9)
    if lips.sum() < 30 or skin.sum() < 30:
        return sd_outer
    x1, x0 = lab[lips].astype(np.float64), lab[skin].astype(np.float64)
    m1, m0 = x1.mean(axis=0), x0.mean(axis=0)
    cov = 0.5 * (np.cov(x1, rowvar=False) + np.cov(x0, rowvar=False)) + np.eye(3) * 1.0
    wv = np.linalg.solve(cov, m1 - m0)
    llr = (lab.reshape(-1, 3) @ wv - wv @ (0.5 * (m1 + m0))).reshape(sd_outer.shape)
    c = params.outer_llr_clip
    shift = np.clip(llr, -c, c) * (params.outer_sigma * cw)
    band = np.abs(sd_outer) < params.outer_band * cw
    out = np.where(band, sd_outer + shift, sd_outer).astype(np.float32)
    return cv2.GaussianBlur(out, (0, 0), 1.0)


def _mouth_opening_lda(
    lab: np.ndarray, sd_outer: np.ndarray, sd_inner: np.ndarray, params: MaskParams
) -> np.ndarray:
    cw = params.canvas_width
    L = lab[..., 0]
    trusted = sd_inner > params.trust * cw
    band = (sd_inner > -params.band * cw) & (sd_outer > 0) & ~trusted
    lip_ref = (sd_inner < -params.band * cw) & (sd_outer > 0.02 * cw)
    if lip_ref.sum() < 30:
        return trusted
    rows = np.arange(L.shape[0])[:, None]
    centre = _fill_nan(_column_stat(np.broadcast_to(rows, L.shape).astype(np.float32),
                                    sd_inner > -2, "mean"))
    upper = lip_ref & (rows < centre[None, :])
    lower = lip_ref & (rows >= centre[None, :])
    l_ref = _fill_nan(np.fmin(_column_stat(L, upper, "mean"), _column_stat(L, lower, "mean")))
    lb = np.where(band, L, np.inf)
    core_row = lb.argmin(axis=0)
    cols = np.arange(L.shape[1])
    l_min = lb[core_row, cols]
    finite = np.isfinite(l_min)
    ratio = np.where(finite, l_min, l_ref) / np.maximum(l_ref, 1.0)
    # Judge the ratio over a stretch of the mouth, and keep only long runs: a gap between the
    # lips is continuous, and a dashed removal would look worse than either choice.
    ratio = cv2.GaussianBlur(ratio[None, :].astype(np.float32), (0, 0), 0.03 * cw)[0]
    hole = ((ratio < params.dark_ratio) & finite).astype(np.uint8)[None, :]
    k = max(int(params.close_along * cw) | 1, 3)
    hole = cv2.morphologyEx(hole, cv2.MORPH_CLOSE, np.ones((1, k), np.uint8))
    hole = cv2.morphologyEx(hole, cv2.MORPH_OPEN, np.ones((1, k), np.uint8))[0] > 0
    hole &= finite
    cores = np.zeros_like(trusted)
    cores[core_row[hole], cols[hole]] = True
    opening_samples = trusted | cores
    if opening_samples.sum() < 10:
        return trusted
    x0 = lab[lip_ref].astype(np.float64)
    x1 = lab[opening_samples].astype(np.float64)
    # The opening is two populations (bright teeth, dark cavity); one LDA each against the
    # lips, and a pixel takes the likelier of the two.
    split = np.median(x0[:, 0])
    llr = np.full(L.shape, -np.inf)
    for part in (x1[x1[:, 0] > split], x1[x1[:, 0] <= split]):
        if len(part) >= 5:
            llr = np.maximum(llr, _lda_llr(lab, part, x0))
    if not np.isfinite(llr).any():
        return trusted
    z = sd_inner / (params.inner_sigma * cw) + np.clip(llr, -params.inner_llr_reclaim,
                                                       params.inner_llr_clip)
    # In columns where the lips only fold (no hole), the landmarks alone decide.
    gate = hole[None, :] | trusted.any(axis=0)[None, :]
    cand = band & (z > 0) & gate
    seeds = trusted | cores
    n, lbl = cv2.connectedComponents((cand | seeds).astype(np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    keep[np.unique(lbl[seeds])] = True
    keep[0] = False
    return keep[lbl] | trusted


def _lda_llr(lab: np.ndarray, x1: np.ndarray, x0: np.ndarray) -> np.ndarray:
    """Log-likelihood ratio class 1 vs class 0 (shared-covariance Gaussians) per pixel."""
    m1, m0 = x1.mean(axis=0), x0.mean(axis=0)
    c1 = np.cov(x1, rowvar=False) if len(x1) > 3 else np.eye(3) * 25.0
    cov = 0.5 * (c1 + np.cov(x0, rowvar=False)) + np.eye(3) * 4.0
    wv = np.linalg.solve(cov, m1 - m0)
    return (lab.reshape(-1, 3) @ wv - wv @ (0.5 * (m1 + m0))).reshape(lab.shape[:2])


def _fill_nan(v: np.ndarray) -> np.ndarray:
    ok = np.isfinite(v)
    if not ok.any():
        return np.zeros_like(v)
    idx = np.arange(len(v))
    return np.interp(idx, idx[ok], v[ok])


def lip_mask_canvas(
    frame_bgr: np.ndarray, xy: np.ndarray, params: MaskParams = DEFAULT_PARAMS
) -> tuple[np.ndarray, MouthFrame]:
    """Lip alpha (float32, 0..1) on the mouth canvas, and the canvas geometry.

    xy: (478, 2) landmarks in pixel-index coordinates (pixel centres at integers).
    """
    h, w = frame_bgr.shape[:2]
    mf = mouth_frame(xy, (w, h), params)
    cw = params.canvas_width
    sd_outer = _signed_distance(mf.to_canvas(outer_contour(xy)), mf.size) + params.outer_offset * cw
    sd_inner = _signed_distance(mf.to_canvas(inner_contour(xy)), mf.size)
    x0, y0, x1, y1 = mf.box
    crop = frame_bgr[y0:y1, x0:x1]
    canvas = cv2.warpAffine(
        crop, mf.crop_matrix(), mf.size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    lab = cv2.cvtColor(canvas.astype(np.float32) * (1.0 / 255.0), cv2.COLOR_BGR2LAB)
    if params.use_lda:
        opening = _mouth_opening_lda(lab, sd_outer, sd_inner, params)
    else:
        opening = _mouth_opening(lab, sd_outer, sd_inner, params)
    if params.outer_llr_clip > 0:
        sd_outer = _refine_outer(lab, sd_outer, sd_inner, params)
    outer_alpha = _smoothstep(sd_outer / (params.feather * cw) + 0.5)
    gap = cv2.distanceTransform((~opening).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    inner_alpha = _smoothstep((gap - params.inner_gap * cw) / (params.inner_feather * cw))
    return (outer_alpha * inner_alpha).astype(np.float32), mf


def lip_mask_crop(
    frame_bgr: np.ndarray, face: Face, params: MaskParams = DEFAULT_PARAMS
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Lip alpha over the lips' frame region only: (alpha (h, w) float32, box x0, y0, x1, y1)."""
    xy = face.xy.astype(np.float64) - 0.5  # MediaPipe x*width has pixel centres at +0.5
    alpha_c, mf = lip_mask_canvas(frame_bgr, xy, params)
    x0, y0, x1, y1 = mf.box
    alpha = cv2.warpAffine(
        alpha_c,
        mf.crop_matrix(),
        (x1 - x0, y1 - y0),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0.0,
    )
    return alpha, mf.box


def lip_mask(frame_bgr: np.ndarray, face: Face, params: MaskParams = DEFAULT_PARAMS) -> np.ndarray:
    """Full-frame float32 (H, W) lip alpha in 0..1: outer lips minus the mouth opening, feathered."""
    h, w = frame_bgr.shape[:2]
    out = np.zeros((h, w), np.float32)
    alpha, (x0, y0, x1, y1) = lip_mask_crop(frame_bgr, face, params)
    out[y0:y1, x0:x1] = alpha
    return out


def inner_polygon_mask(face: Face, size: tuple[int, int]) -> np.ndarray:
    """The plain landmark polygon of the mouth opening, uint8 (H, W) — the baseline's hole."""
    pts = face.xy[list(INNER_UPPER) + list(INNER_LOWER[::-1][1:-1])]
    out = np.zeros((size[1], size[0]), np.uint8)
    cv2.fillPoly(out, [np.round(pts - 0.5).astype(np.int32)], 1)
    return out


def polygon_lip_mask(face: Face, size: tuple[int, int]) -> np.ndarray:
    """Baseline: the plain polygon between the outer and inner lip landmarks, uint8 0/1 (H, W)."""
    outer = face.xy[list(OUTER_UPPER) + list(OUTER_LOWER[::-1][1:-1])]
    out = np.zeros((size[1], size[0]), np.uint8)
    cv2.fillPoly(out, [np.round(outer).astype(np.int32)], 1)
    inner = face.xy[list(INNER_UPPER) + list(INNER_LOWER[::-1][1:-1])]
    cv2.fillPoly(out, [np.round(inner).astype(np.int32)], 0)
    return out


__all__ = ["DEFAULT_PARAMS", "MaskParams", "lip_mask", "lip_mask_crop", "polygon_lip_mask",
           "mouth_width"]
