"""The renderer's per-frame shortcuts change no pixel: culled occluder, cached temple fit,
closed-form inverses, OpenCV read-back swizzle; a reused overlay is never more than
reuse_px off the pose it stands for."""

from __future__ import annotations

from dataclasses import replace
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
    opts = RenderOptions(reuse_px=0)  # every call draws: the temple refit is what is tested
    with GlassesRenderer(opts) as r, GlassesRenderer(opts) as fresh:
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
    from vision.render.gpu_product import GpuProduct

    product = GlassesCatalog.load().get("REC-M")
    face, pose, cam = cases[2]
    with GlassesRenderer(RenderOptions()) as r:
        r.render_overlay(face, pose, cam, product)
        gp = next(iter(r._products.values()))
        assert isinstance(gp, GpuProduct)
        with r._ctx:
            pts = gp.fit(pose)
    parts = fit_parts(mesh_parts(product, rest=True), face_frame_landmarks(pose))
    temples = np.vstack([p.vertices[:, :3] for p in parts if p.temple]).astype(np.float64)
    np.testing.assert_allclose(pts[len(pts) - len(temples):], temples, atol=1e-3)


def _shifted(face: Face, dx: float) -> Face:
    """The same face dx pixels to the right (the glasses follow its bridge landmark)."""
    moved = face.landmarks.copy()
    moved[:, 0] += dx
    return replace(face, landmarks=moved)


def test_overlay_is_reused_only_within_reuse_px(cases: list[tuple[Face, HeadPose, Camera]]) -> None:
    """A still head is drawn once: a shift under reuse_px (0.5 px) hands back the same overlay,
    a larger one, another variant or another product draws again; reuse_px=0 always draws."""
    catalog = GlassesCatalog.load()
    product, other = catalog.get("REC-M"), catalog.get("AVI-55")
    face, pose, cam = cases[0]
    with GlassesRenderer(RenderOptions()) as r:
        first = r.render_overlay(face, pose, cam, product)
        assert first is not None and not first.premul_bgra.flags.writeable
        assert r.render_overlay(face, pose, cam, product) is first
        assert r.render_overlay(_shifted(face, 0.3), pose, cam, product) is first
        assert (r.draws, r.reuses) == (1, 2)
        moved = r.render_overlay(_shifted(face, 0.8), pose, cam, product)
        assert moved is not None and moved is not first and r.draws == 2
        variant = product.variants[-1].name
        assert r.render_overlay(face, pose, cam, product, variant) is not first
        assert r.render_overlay(face, pose, cam, other) is not first
        # what was drawn stays reusable while a few overlays alternate (faces, streams)
        assert r.render_overlay(face, pose, cam, product) is first
        assert r.render_overlay(face, pose, cam, product, occluder=False) is not first
        metal = replace(product, material="metal")  # same sku and mesh, other pixels
        assert r.render_overlay(face, pose, cam, metal) is not first
        assert r.draws == 6
    with GlassesRenderer(RenderOptions(reuse_px=0)) as r:
        a = r.render_overlay(face, pose, cam, product)
        b = r.render_overlay(face, pose, cam, product)
        assert a is not None and b is not None and a is not b and (r.draws, r.reuses) == (2, 0)
        np.testing.assert_array_equal(a.premul_bgra, b.premul_bgra)


def test_reused_overlay_is_within_a_pixel_of_a_fresh_draw(
    cases: list[tuple[Face, HeadPose, Camera]],
) -> None:
    """What a shopper sees on a reused frame: the overlay drawn for a face 0.35 px away
    against the one drawn for this pose differs only along edges, by under a pixel's worth."""
    product = GlassesCatalog.load().get("REC-M")
    face, pose, cam = cases[1]
    with GlassesRenderer(RenderOptions()) as r, GlassesRenderer(RenderOptions(reuse_px=0)) as fresh:
        r.render_overlay(face, pose, cam, product)
        reused = r.render_overlay(_shifted(face, 0.35), pose, cam, product)
        exact = fresh.render_overlay(_shifted(face, 0.35), pose, cam, product)
    assert reused is not None and exact is not None and r.reuses == 1
    assert abs(reused.x - exact.x) <= 1 and abs(reused.y - exact.y) <= 1
    h = min(reused.premul_bgra.shape[0], exact.premul_bgra.shape[0])
    w = min(reused.premul_bgra.shape[1], exact.premul_bgra.shape[1])
    a = reused.premul_bgra[:h, :w, 3].astype(int)
    b = exact.premul_bgra[:h, :w, 3].astype(int)
    if (reused.x, reused.y) == (exact.x, exact.y):
        diff = np.abs(a - b)
        assert diff.max() < 255 * 0.6  # an edge pixel's coverage moves by < half a pixel's
        assert diff.mean() < 255 * 0.05
