"""Frame materials (issue 14): metal reflects its environment, acetate is a lit coloured body."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from vision.catalog import GlassesCatalog
from vision.geometry import Camera, estimate_pose
from vision.landmarks import FaceTracker, FaceTrackerOptions, RunningMode
from vision.render import GlassesRenderer, RenderOptions

# (p95 - p5) / mean of the opaque frame's luminance, the same frame, face and colour:
# measured on obama.jpg, metal 2.1-4.3 vs acetate 0.8-1.9 (llvmpipe).
CONTRAST_GAIN_MIN = 1.5


def _specular_contrast(premul_bgra: np.ndarray) -> float:
    frame = premul_bgra[..., 3] >= 250  # the opaque frame; lenses are translucent
    lum = cv2.cvtColor(np.ascontiguousarray(premul_bgra[..., :3]), cv2.COLOR_BGR2GRAY)
    v = lum[frame].astype(np.float64)
    assert len(v) > 500
    return float((np.percentile(v, 95) - np.percentile(v, 5)) / (v.mean() + 1.0))


@pytest.mark.parametrize("sku", ["RND-47", "REC-M"])
def test_metal_frame_has_more_specular_contrast_than_acetate(shared_data: Path, sku: str) -> None:
    image = cv2.imread(str(shared_data / "faces" / "photos" / "obama.jpg"))
    with FaceTracker(FaceTrackerOptions(running_mode=RunningMode.IMAGE)) as tracker:
        face = tracker.process(image)[0]
    camera = Camera(image.shape[1], image.shape[0])
    pose = estimate_pose(face, camera)
    product = GlassesCatalog.load().get(sku)
    contrast = {}
    with GlassesRenderer(RenderOptions()) as renderer:
        for material in ("acetate", "metal"):
            ov = renderer.render_overlay(face, pose, camera,
                                         dataclasses.replace(product, material=material))
            assert ov is not None
            contrast[material] = _specular_contrast(ov.premul_bgra)
    assert contrast["metal"] >= CONTRAST_GAIN_MIN * contrast["acetate"], contrast


def test_lens_edges_brighten_fresnel(shared_data: Path) -> None:
    # A tinted lens is more opaque toward its rim than at its centre (grazing angles reflect).
    image = cv2.imread(str(shared_data / "faces" / "photos" / "obama.jpg"))
    with FaceTracker(FaceTrackerOptions(running_mode=RunningMode.IMAGE)) as tracker:
        face = tracker.process(image)[0]
    camera = Camera(image.shape[1], image.shape[0])
    pose = estimate_pose(face, camera)
    product = GlassesCatalog.load().get("RND-51")
    with GlassesRenderer(RenderOptions()) as renderer:
        ov = renderer.render_overlay(face, pose, camera, product)
    assert ov is not None
    a = ov.premul_bgra[..., 3].astype(np.float32) / 255.0
    lens = (a > 0.02) & (a < 0.95)
    dist = cv2.distanceTransform(lens.astype(np.uint8), cv2.DIST_L2, 5)
    inner, edge = lens & (dist > 6), lens & (dist <= 2) & (dist > 0)
    assert inner.sum() > 200 and edge.sum() > 50
    assert float(a[edge].mean()) > float(a[inner].mean()), (a[edge].mean(), a[inner].mean())
