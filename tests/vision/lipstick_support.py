"""Shared helpers for the lipstick tests and docs: the faces/lips cases and the mask metrics."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vision.landmarks import Face, FaceTracker, FaceTrackerOptions, RunningMode
from vision.lipstick.mask import lip_mask, polygon_lip_mask

LIP_LABELS = (7, 9)
TEETH_LABEL = 8
MIN_TEETH_PX = 50  # photos with fewer visible teeth pixels are not judged on teeth


@dataclass(frozen=True)
class LipCase:
    name: str
    image: np.ndarray  # BGR (361, 361, 3)
    labels: np.ndarray  # (361, 361) uint8, centre-aligned nearest-neighbour resize
    labels_floor: np.ndarray  # the same with cv2.INTER_NEAREST (half-pixel shifted), for reference
    face: Face | None


def load_lip_cases(shared_data: Path, tracker: FaceTracker) -> list[LipCase]:
    root = shared_data / "faces" / "lips"
    cases = []
    for img_path in sorted((root / "images").glob("*.png")):
        image = cv2.imread(str(img_path), cv2.IMREAD_COLOR)
        raw = cv2.imread(str(root / "masks" / img_path.name), cv2.IMREAD_UNCHANGED)
        size = (image.shape[1], image.shape[0])
        # INTER_NEAREST_EXACT maps pixel centres (as PIL/skimage/Matlab do); plain INTER_NEAREST
        # floors without the half-pixel offset, shifting the labels ~0.5 px down-right.
        exact = cv2.resize(raw, size, interpolation=cv2.INTER_NEAREST_EXACT)
        floor = cv2.resize(raw, size, interpolation=cv2.INTER_NEAREST)
        faces = tracker.process(image)
        cases.append(LipCase(img_path.stem, image, exact, floor, faces[0] if faces else None))
    return cases


def image_tracker() -> FaceTracker:
    return FaceTracker(FaceTrackerOptions(running_mode=RunningMode.IMAGE))


@dataclass(frozen=True)
class MaskScore:
    iou: float
    teeth_px: int
    teeth_share: float  # alpha-weighted: the share of full colour that lands on teeth pixels
    teeth_painted: float  # share of teeth pixels with alpha >= 0.5


def score_mask(alpha: np.ndarray, labels: np.ndarray) -> MaskScore:
    gt = np.isin(labels, LIP_LABELS)
    teeth = labels == TEETH_LABEL
    pred = alpha >= 0.5
    union = int((gt | pred).sum())
    iou = float((gt & pred).sum()) / union if union else 0.0
    n = int(teeth.sum())
    share = float(alpha[teeth].sum()) / n if n else 0.0
    painted = float(pred[teeth].mean()) if n else 0.0
    return MaskScore(iou, n, share, painted)


def mask_table(cases: list[LipCase]) -> tuple[list[dict], str]:
    """Per-photo scores of our mask and of the plain landmark polygon, plus a markdown table."""
    rows = []
    for c in cases:
        assert c.face is not None, f"no face found in {c.name}"
        ours = lip_mask(c.image, c.face)
        poly = polygon_lip_mask(c.face, (c.image.shape[1], c.image.shape[0])).astype(np.float32)
        rows.append({
            "photo": c.name,
            "ours": score_mask(ours, c.labels),
            "poly": score_mask(poly, c.labels),
            "ours_floor": score_mask(ours, c.labels_floor),
            "poly_floor": score_mask(poly, c.labels_floor),
        })
    lines = [
        "| photo | IoU ours | IoU polygon | teeth px | teeth colour ours | teeth painted ours "
        "| teeth painted polygon | IoU ours (floor-NN labels) | IoU polygon (floor-NN) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        o, p = r["ours"], r["poly"]
        lines.append(
            f"| {r['photo']} | {o.iou:.3f} | {p.iou:.3f} | {o.teeth_px} | {o.teeth_share:.1%} "
            f"| {o.teeth_painted:.1%} | {p.teeth_painted:.1%} | {r['ours_floor'].iou:.3f} "
            f"| {r['poly_floor'].iou:.3f} |"
        )
    mean = {k: float(np.mean([r[k].iou for r in rows])) for k in
            ("ours", "poly", "ours_floor", "poly_floor")}
    lines.append(
        f"| **mean** | **{mean['ours']:.3f}** | {mean['poly']:.3f} | | | | "
        f"| {mean['ours_floor']:.3f} | {mean['poly_floor']:.3f} |"
    )
    return rows, "\n".join(lines)


def _hue(bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(..., 2) unit a*b* direction (the hue: a shadowed lip keeps it) and the chroma C*."""
    lab = cv2.cvtColor(np.ascontiguousarray(bgr, dtype=np.uint8).reshape(-1, 1, 3),
                       cv2.COLOR_BGR2LAB).reshape(*bgr.shape[:-1], 3).astype(np.float64)
    ab = lab[..., 1:] - 128.0
    c = np.hypot(ab[..., 0], ab[..., 1])
    return ab / np.maximum(c, 1e-6)[..., None], c


def shade_share(original: np.ndarray, painted: np.ndarray, shade_rgb: tuple[int, int, int]
                ) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, how far the painted hue moved from the original's toward the shade's
    (0 = still the lips' own hue, 1 = the shade's), and where that is measurable: the hues
    differ by more than ~17 degrees and both pixels carry some colour (C* > 4)."""
    u0, c0 = _hue(original)
    u1, c1 = _hue(painted)
    us, _ = _hue(np.array(shade_rgb[::-1], np.uint8)[None, :])
    d = us[0] - u0
    n2 = (d * d).sum(axis=-1)
    share = ((u1 - u0) * d).sum(axis=-1) / np.maximum(n2, 1e-9)
    return share, (n2 > 0.3 ** 2) & (c0 > 4.0) & (c1 > 4.0)


def enamel(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Teeth pixels (label 8) that look like teeth: lighter than the lips' median L*, or grey
    (under half their median chroma) without being dark (above half their median L*: the
    unlit cavity is not enamel). The labels' teeth also take in the lips' shadowed inner edge
    (lip-coloured and darker than the lips), which this leaves out."""
    lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB).astype(np.float64)
    light = lab[..., 0]
    chroma = np.hypot(lab[..., 1] - 128.0, lab[..., 2] - 128.0)
    lips = np.isin(labels, LIP_LABELS)
    l_lips, c_lips = float(np.median(light[lips])), float(np.median(chroma[lips]))
    return (labels == TEETH_LABEL) & (
        (light > l_lips) | ((chroma < 0.5 * c_lips) & (light > 0.5 * l_lips)))
