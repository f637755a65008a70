"""The renderer's per-frame shortcuts change no pixel: culled occluder, cached temple fit,
closed-form inverses, OpenCV read-back swizzle."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import trimesh

from vision.catalog import GlassesCatalog
from vision.geometry import Camera, HeadPose, estimate_pose
from vision.landmarks import Face, FaceTracker, FaceTrackerOptions
from vision.render import GlassesRenderer, RenderOptions
from vision.render.materials import mesh_parts
from vision.render.placement import head_proxy, inverse_3x3, inverse_affine
from vision.render.temples import face_frame_landmarks, fit_parts

AFLW = ("00050", "00251", "00475")


@pytest.fixture(scope="module")
def cases(shared_data: Path) -> list[tuple[Face, HeadPose, Camera]]:
    out = []
    with FaceTracker(FaceTrackerOptions()) as tracker:
        for image_id in AFLW:
            img = cv2.imread(str(shared_data / "faces" / "aflw2000" / f"image{image_id}.jpg"))
            faces = tracker.process(img)
            assert faces, image_id
            cam = Camera(img.shape[1], img.shape[0])
            out.append((faces[0], estimate_pose(faces[0], cam), cam))
    return out


def test_head_proxy_is_closed_and_wound_outward() -> None:
    """What makes back-face culling of the occluder exact."""
    verts, tris = head_proxy()
    mesh = trimesh.Trimesh(verts, tris, process=True)
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert mesh.volume > 0  # counter-clockwise seen from outside


def test_closed_form_inverses_match_numpy() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        a = rng.normal(size=(3, 3))
        np.testing.assert_allclose(inverse_3x3(a), np.linalg.inv(a), rtol=1e-9, atol=1e-9)
        m = np.eye(4)
        m[:3, :3], m[:3, 3] = rng.normal(size=(3, 3)), rng.normal(size=3)
        np.testing.assert_allclose(inverse_affine(m), np.linalg.inv(m), rtol=1e-9, atol=1e-9)
    with pytest.raises(np.linalg.LinAlgError):
        inverse_3x3(np.zeros((3, 3)))


def test_cached_temple_fit_follows_the_face(cases: list[tuple[Face, HeadPose, Camera]]) -> None:
    """Drawing A, B, A gives A's pixels again (the buffers are refitted when the ears move),
    and each frame matches a renderer that draws only that face."""
    product = GlassesCatalog.load().get("REC-M")
    (fa, pa, ca), (fb, pb, cb) = cases[0], cases[1]
    with GlassesRenderer(RenderOptions()) as r, GlassesRenderer(RenderOptions()) as fresh:
        first = r.render_overlay(fa, pa, ca, product)
        other = r.render_overlay(fb, pb, cb, product)
        again = r.render_overlay(fa, pa, ca, product)
        alone = fresh.render_overlay(fb, pb, cb, product)
    assert first is not None and other is not None and again is not None and alone is not None
    assert (first.x, first.y) == (again.x, again.y)
    np.testing.assert_array_equal(first.premul_bgra, again.premul_bgra)
    np.testing.assert_array_equal(other.premul_bgra, alone.premul_bgra)


def test_renderer_temples_match_the_cpu_fit(cases: list[tuple[Face, HeadPose, Camera]]) -> None:
    """The renderer's in-place point buffer holds fit_parts' temples for that face."""
    from vision.render.renderer import _GpuProduct

    product = GlassesCatalog.load().get("REC-M")
    face, pose, cam = cases[2]
    with GlassesRenderer(RenderOptions()) as r:
        r.render_overlay(face, pose, cam, product)
        gp = next(iter(r._products.values()))
        assert isinstance(gp, _GpuProduct)
        with r._ctx:
            pts = gp.fit(pose)
    parts = fit_parts(mesh_parts(product, rest=True), face_frame_landmarks(pose))
    temples = np.vstack([p.vertices[:, :3] for p in parts if p.temple]).astype(np.float64)
    np.testing.assert_allclose(pts[len(pts) - len(temples):], temples, atol=1e-3)
