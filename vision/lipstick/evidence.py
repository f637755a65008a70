"""Pixel evidence for the lip mask: colour models that move the landmark borders (Lab, LDA)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from vision.lipstick.mask import MaskParams


_MAX_SAMPLES = 1500


def samples(lab: np.ndarray, where: np.ndarray) -> np.ndarray:
    """(n, 3) float64 Lab samples where the mask is set, strided down to at most ~1500:
    3x3 moments are estimated as well from those, at a fraction of the cost."""
    idx = np.flatnonzero(where)
    idx = idx[:: max(len(idx) // _MAX_SAMPLES, 1)]
    return lab.reshape(-1, 3)[idx].astype(np.float64)


def lda_llr(lab: np.ndarray, x1: np.ndarray, x0: np.ndarray, ridge: float) -> np.ndarray:
    """Per-pixel log-likelihood ratio class 1 vs class 0 (Gaussians with a shared covariance).

    lab: (h, w, 3); x1, x0: (n, 3) samples. The ridge (L*a*b* units squared) keeps the
    covariance sane when a class has few or very uniform samples.
    """
    m1, m0 = x1.mean(axis=0), x0.mean(axis=0)
    c1 = np.cov(x1, rowvar=False) if len(x1) > 3 else np.eye(3) * 25.0
    cov = 0.5 * (c1 + np.cov(x0, rowvar=False)) + np.eye(3) * ridge
    wv = np.linalg.solve(cov, m1 - m0)
    # One affine map over the channels (float32, no (n, 3) float64 copy of the canvas).
    m = np.append(wv, -wv @ (0.5 * (m1 + m0))).astype(np.float32)[None, :]
    return cv2.transform(lab, m)


def refine_outer(
    lab: np.ndarray, sd_outer: np.ndarray, sd_inner: np.ndarray, params: MaskParams
) -> np.ndarray:
    """Outer signed distance (canvas px, > 0 inside) moved by lips-vs-skin colour evidence.

    Lip pixels well inside and a ring of skin just outside train a two-class LDA in Lab; its
    log-likelihood ratio, clipped, shifts the border by up to clip * sigma. Weakly separable
    colours (bare lips on pale skin) give a small ratio, so the landmarks keep the say: the
    fusion calibrates itself per photo.
    """
    cw = params.canvas_width
    lips = (sd_outer > 0.04 * cw) & (sd_inner < -params.band * cw)
    skin = (sd_outer < -0.04 * cw) & (sd_outer > -params.pad * cw * 0.9)
    if lips.sum() < 30 or skin.sum() < 30:
        return sd_outer
    llr = lda_llr(lab, samples(lab, lips), samples(lab, skin), ridge=1.0)
    c = params.outer_llr_clip
    shift = np.clip(llr, -c, c) * (params.outer_sigma * cw)
    near = np.abs(sd_outer) < params.outer_band * cw
    out = np.where(near, sd_outer + shift, sd_outer).astype(np.float32)
    return cv2.GaussianBlur(out, (0, 0), 1.0)


def _column_mean(values: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Per canvas column mean of values where the mask is set; NaN for empty columns."""
    n = where.sum(axis=0)
    s = np.where(where, values, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def _fill_nan(v: np.ndarray) -> np.ndarray:
    ok = np.isfinite(v)
    if not ok.any():
        return np.zeros_like(v)
    idx = np.arange(len(v))
    return np.interp(idx, idx[ok], v[ok])


def _gap_columns(L: np.ndarray, band: np.ndarray, l_ref: np.ndarray, params: MaskParams
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Canvas columns where the lips part (a dark hole, not a fold), and each column's darkest row.

    A fold between closed lips is lit lip tissue and keeps over half the lips' lightness; a
    gap shows the unlit mouth behind. The ratio is judged over a stretch of the mouth and only
    long runs are kept: a gap is continuous, and a dashed line would look worse than either.
    """
    cw = params.canvas_width
    lb = np.where(band, L, np.inf)
    core_row = lb.argmin(axis=0)
    l_min = lb[core_row, np.arange(L.shape[1])]
    finite = np.isfinite(l_min)
    ratio = np.where(finite, l_min, l_ref) / np.maximum(l_ref, 1.0)
    ratio = cv2.GaussianBlur(ratio[None, :].astype(np.float32), (0, 0), 0.03 * cw)[0]
    gap = ((ratio < params.dark_ratio) & finite).astype(np.uint8)[None, :]
    k = max(int(params.run_along * cw) | 1, 3)
    gap = cv2.morphologyEx(gap, cv2.MORPH_CLOSE, np.ones((1, k), np.uint8))
    gap = cv2.morphologyEx(gap, cv2.MORPH_OPEN, np.ones((1, k), np.uint8))[0] > 0
    return gap & finite, core_row


def is_closed(sd_inner: np.ndarray, params: MaskParams) -> bool:
    """True when the inner landmarks have no trusted interior: the lips touch or barely part."""
    return not bool((sd_inner > params.trust * params.canvas_width).any())


def _slit_columns(sd_outer: np.ndarray, span: float) -> np.ndarray:
    """Canvas columns within span x the mouth's half-width of its middle (corners on one row)."""
    cols = np.arange(sd_outer.shape[1])
    xs = np.flatnonzero((sd_outer > 0).any(axis=0))
    if not len(xs):
        return np.zeros(len(cols), bool)
    mid, half = 0.5 * (xs[0] + xs[-1]), 0.5 * (xs[-1] - xs[0])
    return np.abs(cols - mid) <= span * half


def mouth_opening(
    lab: np.ndarray, sd_outer: np.ndarray, sd_inner: np.ndarray, params: MaskParams
) -> np.ndarray:
    """Boolean canvas mask of the mouth opening (see mouth_opening_evidence)."""
    return mouth_opening_evidence(lab, sd_outer, sd_inner, params)[0]


def mouth_opening_evidence(
    lab: np.ndarray, sd_outer: np.ndarray, sd_inner: np.ndarray, params: MaskParams
) -> tuple[np.ndarray, np.ndarray | None]:
    """(opening, llr): the boolean canvas mask of the mouth opening and the colour
    log-likelihood ratio opening vs lips behind it (float32, None where there was no colour
    model: too few samples). The ratio lets the rim next to the opening be tinted only where
    it looks like lip (teeth and the cavity score high).

    The opening mask of the mouth opening: teeth, tongue, cavity, the gap between lips.

    Deep inside the inner landmark contour is always opening (tongue-safe). Near it, the
    landmark prior (signed distance over its uncertainty) is fused with colour evidence:
    opening samples are the deep interior plus the darkest pixel of each gap column, split
    into bright (teeth) and dark (cavity) populations, each with an LDA against the lips.
    Where the lips only fold, the landmarks alone decide. On a closed mouth (no trusted
    interior) a slit is looked for only in the middle of the mouth.
    """
    cw = params.canvas_width
    L = lab[..., 0]
    trusted = sd_inner > params.trust * cw
    band = (sd_inner > -params.band * cw) & (sd_outer > 0) & ~trusted
    lip_ref = (sd_inner < -params.band * cw) & (sd_outer > 0.02 * cw)
    if lip_ref.sum() < 30:
        return trusted, None
    # The upper lip is usually in shadow: compare a gap with the darker of the two lips.
    rows = np.arange(L.shape[0], dtype=np.float32)[:, None]
    centre = _fill_nan(_column_mean(np.broadcast_to(rows, L.shape), sd_inner > -2))
    upper = lip_ref & (rows < centre[None, :])
    lower = lip_ref & (rows >= centre[None, :])
    l_ref = _fill_nan(np.fmin(_column_mean(L, upper), _column_mean(L, lower)))
    gap, core_row = _gap_columns(L, band, l_ref, params)
    if not trusted.any():
        # Closed or barely parted lips part in the middle; toward the corners they touch and
        # the dark line there is the junction of the lips (and the commissure creases beside
        # the corners), lip by the reference labels, not an opening. Removing it there left
        # unpainted dark wedges at the corners of thin closed lips.
        gap &= _slit_columns(sd_outer, params.slit_span)
    cols = np.arange(L.shape[1])
    cores = np.zeros_like(trusted)
    cores[core_row[gap], cols[gap]] = True
    seeds = trusted | cores
    if seeds.sum() < 10:
        return trusted, None
    x0 = samples(lab, lip_ref)
    x1 = lab[seeds].astype(np.float64)
    split = np.median(x0[:, 0])
    llr = np.full(L.shape, -np.inf)
    for part in (x1[x1[:, 0] > split], x1[x1[:, 0] <= split]):
        if len(part) >= 5:
            llr = np.maximum(llr, lda_llr(lab, part, x0, ridge=4.0))
    if not np.isfinite(llr).any():
        return trusted, None
    # Colour may pull the border outward by up to clip sigmas, and reclaim lip-coloured
    # pixels inside the landmark contour by up to reclaim sigmas.
    z = sd_inner / (params.inner_sigma * cw) + np.clip(
        llr, -params.inner_llr_reclaim, params.inner_llr_clip
    )
    gate = gap[None, :] | trusted.any(axis=0)[None, :]
    cand = band & (z > 0) & gate
    n, lbl = cv2.connectedComponents((cand | seeds).astype(np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    keep[np.unique(lbl[seeds])] = True
    keep[0] = False
    return keep[lbl] | trusted, np.nan_to_num(llr, neginf=-50.0).astype(np.float32)
