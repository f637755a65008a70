"""Camera model, canonical face, weighted Procrustes and metric head pose on real photos."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.vision.core_support import (
    AFLW_IDS,
    MediaPipeGeometryReference,
    aflw_rotation,
    load_aflw,
)
from vision.errors import OptionsError, PoseError
from vision.geometry import (
    Camera,
    CanonicalFace,
    HeadPose,
    estimate_pose,
    euler_from_rotation,
    rotation_from_euler,
    solve_weighted_procrustes,
    transform_points,
)
from vision.landmarks import Face, FaceTracker, FaceTrackerOptions, RunningMode

POSE_MAE_LIMIT_DEG = 10.0  # issue 2: yaw and roll, photos with |yaw| < 60 degrees


@pytest.fixture(scope="module")
def tracker() -> Iterator[FaceTracker]:
    with FaceTracker(FaceTrackerOptions(running_mode=RunningMode.IMAGE)) as t:
        yield t


@pytest.fixture(scope="module")
def canon() -> CanonicalFace:
    return CanonicalFace.load()


class TestCamera:
    def test_focal_and_intrinsics(self) -> None:
        cam = Camera(640, 480, 63.0)
        assert cam.focal_px == pytest.approx(240 / np.tan(np.radians(31.5)))
        k = cam.intrinsics()
        assert k[0, 0] == k[1, 1] == pytest.approx(cam.focal_px)
        assert (k[0, 2], k[1, 2]) == (320, 240)

    def test_projection_matrix_agrees_with_project(self, canon: CanonicalFace) -> None:
        cam = Camera(1280, 720, 50.0)
        pts = canon.vertices + np.array([3.0, -2.0, -45.0])  # the canonical face 45 cm away
        clip = np.c_[pts, np.ones(len(pts))] @ cam.projection_matrix().T
        ndc = clip[:, :3] / clip[:, 3:]
        px = np.c_[(ndc[:, 0] + 1) / 2 * cam.width, (1 - ndc[:, 1]) / 2 * cam.height]
        assert np.allclose(px, cam.project(pts), atol=1e-6)
        assert np.all(np.abs(ndc[:, 2]) < 1.0)  # inside near/far

    def test_unproject_inverts_project(self, canon: CanonicalFace) -> None:
        cam = Camera(400, 300)
        pts = canon.vertices + np.array([0.0, 0.0, -60.0])
        again = cam.unproject(cam.project(pts), -pts[:, 2])
        assert np.allclose(again, pts, atol=1e-9)

    def test_y_up_x_right(self) -> None:
        cam = Camera(100, 100)
        u, v = cam.project(np.array([[1.0, 1.0, -10.0]]))[0]
        assert u > 50 and v < 50

    @pytest.mark.parametrize("args", [(0, 10), (10, -1), (10, 10, 0.0), (10, 10, 180.0)])
    def test_rejects_bad_camera(self, args: tuple) -> None:
        with pytest.raises(OptionsError):
            Camera(*args)


class TestCanonicalFace:
    def test_vendored_model(self, canon: CanonicalFace) -> None:
        assert canon.vertices.shape == (468, 3)
        assert canon.triangles.shape == (898, 3)
        assert canon.triangles.min() == 0 and canon.triangles.max() == 467
        assert canon.vertices_iris.shape == (478, 3)
        assert canon.triangles_iris.shape == (906, 3)
        assert np.allclose(canon.vertices_iris[:468], canon.vertices)
        # Conventions: +x is the wearer's left (right eye corner 33 at -x), +y up, +z forward.
        assert canon.vertices[33, 0] < 0 < canon.vertices[263, 0]
        assert canon.vertices[10, 1] > canon.vertices[152, 1]  # forehead above chin
        assert canon.vertices[1, 2] > canon.vertices[234, 2]  # nose tip in front of the cheek
        # Metric: the canonical interpupillary distance is an adult's 6.36 cm.
        ipd = np.linalg.norm(canon.vertices_iris[468] - canon.vertices_iris[473])
        assert ipd == pytest.approx(6.36, abs=0.01)

    def test_matches_mediapipe_metadata(self, canon: CanonicalFace, shared_data: Path) -> None:
        text = (shared_data / "face_geometry" /
                "geometry_pipeline_metadata_landmarks.pbtxt").read_text()
        basis = re.findall(r"landmark_id:\s*(\d+)\s+weight:\s*([-0-9.eE]+)", text)
        assert canon.procrustes_ids.tolist() == [int(i) for i, _ in basis]
        assert np.allclose(canon.procrustes_weights, [float(w) for _, w in basis], atol=1e-7)
        obj = (shared_data / "face_geometry" / "canonical_face_model.obj").read_text()
        v = np.array([ln.split()[1:4] for ln in obj.splitlines() if ln.startswith("v ")], float)
        assert np.allclose(v, canon.vertices, atol=1e-5)

    def test_vendored_file_is_what_the_build_script_makes(self, shared_data: Path) -> None:
        from vision.data.build_canonical import build
        from vision.geometry import DATA_FILE

        fresh = build(shared_data / "face_geometry")
        with np.load(DATA_FILE) as vendored:
            assert set(vendored.files) == set(fresh)
            for k, v in fresh.items():
                assert np.array_equal(vendored[k], v), k

    def test_load_is_cached_and_loads_a_path(self, canon: CanonicalFace) -> None:
        from vision.geometry import DATA_FILE

        assert CanonicalFace.load() is canon
        other = CanonicalFace.load(DATA_FILE)
        assert other is not canon and np.array_equal(other.vertices, canon.vertices)


class TestProcrustes:
    def test_recovers_a_similarity(self, canon: CanonicalFace) -> None:
        rot = rotation_from_euler(25.0, -10.0, 5.0)
        src = canon.basis
        dst = 1.3 * src @ rot.T + np.array([1.0, -2.0, -40.0])
        t = solve_weighted_procrustes(src, dst, canon.procrustes_weights)
        assert np.allclose(t[:3, :3], 1.3 * rot, atol=1e-9)
        assert np.allclose(t[:3, 3], [1.0, -2.0, -40.0], atol=1e-9)

    def test_never_reflects(self, canon: CanonicalFace) -> None:
        mirrored = canon.basis * np.array([-1.0, 1.0, 1.0])
        t = solve_weighted_procrustes(canon.basis, mirrored, canon.procrustes_weights)
        assert np.linalg.det(t[:3, :3]) > 0

    def test_zero_weights_rejected(self, canon: CanonicalFace) -> None:
        with pytest.raises(PoseError):
            solve_weighted_procrustes(canon.basis, canon.basis, np.zeros(len(canon.basis)))

    @pytest.mark.parametrize("ypr", [(0, 0, 0), (30, 10, -5), (-70, -20, 40), (10, 80, 0)])
    def test_euler_roundtrip(self, ypr: tuple[float, float, float]) -> None:
        rot = rotation_from_euler(*ypr)
        assert np.allclose(euler_from_rotation(rot), ypr, atol=1e-9)

    def test_euler_signs(self) -> None:
        # yaw > 0: the forward axis (+z) swings toward +x, the wearer's left.
        assert rotation_from_euler(30, 0, 0)[0, 2] > 0
        # pitch > 0: chin up, the forward axis points up.
        assert rotation_from_euler(0, 30, 0)[1, 2] > 0
        # roll > 0: the wearer's left (+x) side goes up.
        assert rotation_from_euler(0, 0, 30)[1, 0] > 0


@pytest.fixture(scope="module")
def aflw_poses(shared_data: Path, tracker: FaceTracker) -> dict[str, dict]:
    out = {}
    for image_id in AFLW_IDS:
        case = load_aflw(shared_data / "faces" / "aflw2000", image_id)
        faces = tracker.process(case.image)
        cam = Camera(case.image.shape[1], case.image.shape[0])
        pose = estimate_pose(faces[0], cam)
        gt = np.array(euler_from_rotation(aflw_rotation(*case.pitch_yaw_roll)))
        ours = np.array([pose.yaw_deg, pose.pitch_deg, pose.roll_deg])
        out[image_id] = {"face": faces[0], "camera": cam, "pose": pose, "gt": gt,
                         "err": ours - gt, "aflw_yaw": np.degrees(case.pitch_yaw_roll[1])}
    return out


class TestHeadPoseOnAflw:
    """Ground truth is AFLW2000-3D's Pose_Para, converted as aflw_rotation() explains: both
    rotations are decomposed with HeadPose's yaw/pitch/roll (yaw > 0 = wearer's left, pitch >
    0 = chin up, roll > 0 = toward the wearer's right shoulder), so AFLW's yaw appears negated.
    Photos with |yaw| >= 60 degrees are reported but not held to the limit."""

    def test_pose_mae(self, aflw_poses: dict[str, dict], record_property: Callable) -> None:
        lines = []
        for k, v in aflw_poses.items():
            lines.append(f"{k}: ours yaw/pitch/roll {np.round(v['gt'] + v['err'], 1)} "
                         f"gt {np.round(v['gt'], 1)} |err| {np.round(np.abs(v['err']), 1)}")
        within = np.array([np.abs(v["err"]) for v in aflw_poses.values()
                           if abs(v["aflw_yaw"]) < 60])
        mae = within.mean(axis=0)
        every = np.abs(np.array([v["err"] for v in aflw_poses.values()])).mean(axis=0)
        table = "\n".join(lines) + (f"\nMAE |yaw|<60 ({len(within)} photos): yaw {mae[0]:.2f} "
                                    f"pitch {mae[1]:.2f} roll {mae[2]:.2f}; all 8: "
                                    f"{np.round(every, 2)}")
        print(table)
        record_property("pose_table", table)
        record_property("mae_yaw_pitch_roll_deg", [round(float(x), 2) for x in mae])
        assert len(within) == 6
        assert mae[0] <= POSE_MAE_LIMIT_DEG, table
        assert mae[2] <= POSE_MAE_LIMIT_DEG, table
        # Pitch is reported; its zero differs between models, but a gross error is a bug.
        assert mae[1] <= 2 * POSE_MAE_LIMIT_DEG, table

    def test_yaw_sign_follows_ground_truth(self, aflw_poses: dict[str, dict]) -> None:
        for k, v in aflw_poses.items():
            if abs(v["gt"][0]) > 15:
                assert np.sign(v["gt"][0] + v["err"][0]) == np.sign(v["gt"][0]), k

    @pytest.mark.parametrize("image_id", AFLW_IDS)
    def test_fit_reprojects_onto_landmarks(self, aflw_poses: dict[str, dict], image_id: str,
                                           canon: CanonicalFace) -> None:
        v = aflw_poses[image_id]
        face, cam, pose = v["face"], v["camera"], v["pose"]
        proj = cam.project(transform_points(pose.matrix, canon.basis))
        iod = np.linalg.norm(face.xy[33] - face.xy[263])
        err = np.linalg.norm(proj - face.xy[canon.procrustes_ids], axis=1)
        # The canonical shape is not this person's, so a few percent of the eye distance.
        assert np.average(err, weights=canon.procrustes_weights) < 0.12 * iod
        assert pose.fit_rmse_cm < 1.0
        assert pose.scale == pytest.approx(1.0, abs=0.05)
        # In front of the camera at a portrait distance, and a proper rotation.
        assert -150 < pose.translation_cm[2] < -15
        assert np.allclose(pose.rotation @ pose.rotation.T, np.eye(3), atol=1e-6)

    def test_fast_solver_equals_the_generic_one(self, aflw_poses: dict[str, dict],
                                                canon: CanonicalFace) -> None:
        from vision.geometry import _basis

        pose: HeadPose = aflw_poses["02616"]["pose"]
        assert pose.metric_landmarks is not None
        target = pose.metric_landmarks[canon.procrustes_ids]
        generic = solve_weighted_procrustes(canon.basis, target, canon.procrustes_weights)
        assert np.allclose(_basis(canon).solve(target), generic, atol=1e-12)
        assert np.allclose(pose.matrix, generic, atol=1e-12)

    def test_metric_landmarks_project_back(self, aflw_poses: dict[str, dict]) -> None:
        v = aflw_poses["00050"]
        pose: HeadPose = v["pose"]
        assert pose.metric_landmarks is not None
        assert np.allclose(v["camera"].project(pose.metric_landmarks), v["face"].xy, atol=1e-3)


class TestPoseInvariance:
    def test_same_pose_at_another_resolution(self, aflw_poses: dict[str, dict]) -> None:
        v = aflw_poses["03614"]
        face: Face = v["face"]
        big = Camera(v["camera"].width * 2, v["camera"].height * 2)
        p2 = estimate_pose(face, big)
        p1 = v["pose"]
        assert np.allclose([p2.yaw_deg, p2.pitch_deg, p2.roll_deg],
                           [p1.yaw_deg, p1.pitch_deg, p1.roll_deg], atol=1e-6)
        assert np.allclose(p2.matrix, p1.matrix, atol=1e-6)

    def test_wider_fov_brings_the_face_closer(self, aflw_poses: dict[str, dict]) -> None:
        v = aflw_poses["00050"]
        near = estimate_pose(v["face"], Camera(450, 450, 90.0))
        far = estimate_pose(v["face"], Camera(450, 450, 30.0))
        assert -near.translation_cm[2] < -v["pose"].translation_cm[2] < -far.translation_cm[2]

    def test_mirrored_photo_mirrors_yaw_and_roll(self, shared_data: Path,
                                                 tracker: FaceTracker) -> None:
        img = cv2.imread(str(shared_data / "faces" / "aflw2000" / "image00516.jpg"))
        cam = Camera(img.shape[1], img.shape[0])
        a = estimate_pose(tracker.process(img)[0], cam)
        b = estimate_pose(tracker.process(np.ascontiguousarray(img[:, ::-1]))[0], cam)
        assert abs(a.yaw_deg) > 15
        assert b.yaw_deg == pytest.approx(-a.yaw_deg, abs=4.0)
        assert b.roll_deg == pytest.approx(-a.roll_deg, abs=4.0)
        assert b.pitch_deg == pytest.approx(a.pitch_deg, abs=4.0)

    def test_degenerate_landmarks_rejected(self) -> None:
        face = Face.from_landmarks(np.full((478, 3), 5.0, np.float32), 1.0, (100, 100))
        with pytest.raises(PoseError, match="compact"):
            estimate_pose(face, Camera(100, 100))


@pytest.fixture(scope="module")
def reference(shared_data: Path) -> Iterator[MediaPipeGeometryReference]:
    ref = MediaPipeGeometryReference(
        shared_data / "face_geometry" / "geometry_pipeline_metadata_landmarks.pbtxt")
    yield ref
    ref.close()


class TestMatchesMediaPipe:
    """The port against MediaPipe's C++ geometry pipeline, run on the same landmarks."""

    @pytest.mark.parametrize("image_id", AFLW_IDS)
    def test_same_matrix_and_metric_mesh(self, aflw_poses: dict[str, dict], image_id: str,
                                         reference: MediaPipeGeometryReference) -> None:
        v = aflw_poses[image_id]
        matrix, mesh = reference.pose(v["face"])
        pose: HeadPose = v["pose"]
        # MediaPipe computes in float32; the port in float64.
        assert np.allclose(pose.matrix[:3, :3], matrix[:3, :3], atol=1e-4)
        assert np.allclose(pose.matrix[:3, 3], matrix[:3, 3], atol=1e-3)
        assert pose.metric_landmarks is not None
        ours = transform_points(np.linalg.inv(pose.matrix), pose.metric_landmarks[:468])
        assert np.abs(ours - mesh).max() < 1e-3
