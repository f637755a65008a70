"""The newcomer's try-on pipeline (imdecode, FaceMesh, solvePnP, pyrender, float composite)."""

from __future__ import annotations

import os
import time
from typing import Any

# pyrender picks its GL platform at import time; EGL is the headless one (Mesa or NVIDIA).
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

import cv2
import numpy as np

from vision.catalog import GlassesProduct
from vision.geometry import Camera, CanonicalFace
from vision.render.materials import LENS, mesh_parts, part_color
from vision.render.placement import glasses_to_face

NEAR_CM, FAR_CM = 2.0, 1000.0
# OpenCV's camera looks down +z with y down; GL's (and pyrender's) looks down -z with y up.
CV_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])
_OFFSCREEN: dict[tuple[int, int], Any] = {}


def _offscreen(size: tuple[int, int]) -> Any:
    """One pyrender OffscreenRenderer per frame size for the whole process.

    Deleting one calls eglTerminate on the shared EGL display, which corrupts every other GL
    context of the process (the project's moderngl renderers drew garbage after it), so they
    are never deleted.
    """
    import pyrender

    if size not in _OFFSCREEN:
        _OFFSCREEN[size] = pyrender.OffscreenRenderer(*size)
    return _OFFSCREEN[size]


class ReferenceRenderer:
    """pyrender offscreen, full frame, no MSAA and no occluder: the textbook way."""

    def __init__(self, product: GlassesProduct, variant: str | None = None) -> None:
        import pyrender
        import trimesh

        self._pyrender = pyrender
        var = product.variant(variant)
        self.scene = pyrender.Scene(bg_color=[0.0, 0.0, 0.0, 0.0], ambient_light=[0.45] * 3)
        meshes = []
        for part in mesh_parts(product):
            r, g, b, a = part_color(part, var)
            lens = part.kind == LENS
            material = pyrender.MetallicRoughnessMaterial(
                baseColorFactor=[r, g, b, a], metallicFactor=0.0, roughnessFactor=0.4,
                alphaMode="BLEND" if lens else "OPAQUE", doubleSided=True)
            tm = trimesh.Trimesh(part.vertices[:, :3], part.indices, process=False)
            meshes.append(pyrender.Mesh.from_trimesh(tm, material=material, smooth=False))
        self._nodes = [self.scene.add(m) for m in meshes]
        self.scene.add(pyrender.DirectionalLight(intensity=3.0))
        self._cam_node: Any = None
        self._size: tuple[int, int] | None = None

    def render(self, model_view: np.ndarray, camera: Camera) -> np.ndarray:
        """(H, W, 4) uint8 RGBA of the glasses with GLB mm -> camera cm = model_view."""
        pr = self._pyrender
        size = (camera.width, camera.height)
        if self._size != size:
            if self._cam_node is not None:
                self.scene.remove_node(self._cam_node)
            f = camera.focal_px
            cam = pr.IntrinsicsCamera(f, f, size[0] / 2.0, size[1] / 2.0, znear=NEAR_CM,
                                      zfar=FAR_CM)
            self._cam_node = self.scene.add(cam, pose=np.eye(4))
            self._size = size
        for node in self._nodes:
            self.scene.set_pose(node, model_view)
        color, _ = _offscreen(size).render(self.scene, flags=pr.RenderFlags.RGBA
                                         | pr.RenderFlags.SKIP_CULL_FACES)
        return np.asarray(color)

    def close(self) -> None:
        self.scene.clear()  # the offscreen renderers stay (see _offscreen)


class ReferencePipeline:
    """What a newcomer writes from the tutorials; the benchmarks' yardstick, not for serving."""

    def __init__(self, product: GlassesProduct, jpeg_quality: int = 85) -> None:
        from mediapipe.python.solutions import face_mesh

        self._mesh = face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1,
                                        refine_landmarks=True)
        self._model_pts = np.asarray(CanonicalFace.load().vertices, dtype=np.float64)
        self._glasses_to_face = glasses_to_face()
        self.renderer = ReferenceRenderer(product)
        self.quality = jpeg_quality
        self._camera: Camera | None = None

    def process_bytes(self, data: bytes) -> tuple[bytes, dict[str, float]]:
        """JPEG in, JPEG out, with per-stage milliseconds."""
        t: dict[str, float] = {}
        t0 = time.perf_counter()
        frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        t1 = time.perf_counter()
        h, w = frame.shape[:2]
        if self._camera is None or (self._camera.width, self._camera.height) != (w, h):
            self._camera = Camera(w, h)
        cam = self._camera
        res = self._mesh.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        t2 = time.perf_counter()
        t["decode"], t["landmarks"] = (t1 - t0) * 1e3, (t2 - t1) * 1e3
        out = frame
        if res.multi_face_landmarks:
            lms = res.multi_face_landmarks[0].landmark
            img_pts = np.array([(p.x * w, p.y * h) for p in lms[:468]], dtype=np.float64)
            _, rvec, tvec = cv2.solvePnP(self._model_pts, img_pts, cam.intrinsics(), np.zeros(4),
                                          flags=cv2.SOLVEPNP_ITERATIVE)
            pose = np.eye(4)
            pose[:3, :3], pose[:3, 3] = cv2.Rodrigues(rvec)[0], tvec.ravel()
            t3 = time.perf_counter()
            rgba = self.renderer.render(CV_TO_GL @ pose @ self._glasses_to_face, cam)
            t4 = time.perf_counter()
            alpha = rgba[..., 3:4].astype(np.float32) / 255.0
            out = (rgba[..., 2::-1].astype(np.float32) * alpha
                   + frame.astype(np.float32) * (1.0 - alpha)).astype(np.uint8)
            t5 = time.perf_counter()
            t["pose"], t["render"], t["composite"] = (t3 - t2) * 1e3, (t4 - t3) * 1e3, \
                (t5 - t4) * 1e3
        t6 = time.perf_counter()
        _, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        t["encode"] = (time.perf_counter() - t6) * 1e3
        t["total"] = (time.perf_counter() - t0) * 1e3
        return buf.tobytes(), t

    def close(self) -> None:
        self._mesh.close()
        self.renderer.close()
