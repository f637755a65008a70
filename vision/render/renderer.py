"""GlassesRenderer: offscreen moderngl (EGL) drawing of a product in the metric head-pose frame."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from vision.catalog import GlassesProduct, Variant
from vision.errors import FrameError, PoseError, RenderError
from vision.geometry import Camera, HeadPose, estimate_pose
from vision.landmarks import Face
from vision.render import shaders
from vision.render.composite import composite_premultiplied
from vision.render.device import ContextChoice, RenderDevice, create_context
from vision.render.gpu_product import GpuProduct
from vision.render.materials import LENS, part_color, shading
from vision.render.placement import (
    CANONICAL_BRIDGE_ID,
    anchored_glasses_to_camera,
    glasses_to_face,
    head_proxy,
    inverse_3x3,
)
from vision.render.reuse import DrawnOverlays
from vision.render.targets import AAChoice, Antialias, BoxTargets, choose_aa, crop_projection

BBOX_PAD_PX = 2  # anti-aliased edges spill a pixel past the projected vertices
MAX_CACHED_PRODUCTS = 64  # GPU meshes kept per renderer (a few hundred KB each)
REUSED_OVERLAYS = 4  # drawn overlays kept per renderer for reuse (one per face or stream)


@dataclass(frozen=True)
class RenderOptions:
    """antialias: auto = MSAA on a GPU, the box supersampled ssaa_factor x on llvmpipe (see
    targets.choose_aa); msaa_samples: 0 = off under auto (clamped to what the GL allows);
    occluder: the head proxy pass."""

    msaa_samples: int = 4
    antialias: Antialias = "auto"
    ssaa_factor: int = 2
    occluder: bool = True
    occluder_push_cm: float = 0.3
    anchor_bridge: bool = True  # put the bridge on the detected landmark 168 (see placement)
    # Temple arms (GLB nodes temple_left/right) turned at the hinge to this face's ears and bent
    # behind them (temples.py); False: fitted to the canonical head, as mesh_parts() gives them.
    fit_temples: bool = True
    near_cm: float = 2.0
    far_cm: float = 1000.0
    light_dir: tuple[float, float, float] = (-0.35, 0.6, 0.75)  # camera space, toward the light
    ambient: float = 0.45
    in_place: bool = False  # composite into the caller's frame instead of a copy
    # A drawn overlay is reused while no vertex of the glasses has moved this many pixels on
    # screen since it was drawn (0: draw every frame). On a still head the smoothed pose moves
    # the glasses ~0.15 px a frame; half a pixel is the tolerance the temple refit already
    # works to (gpu_product.EAR_REFIT_MM), under what an anti-aliased edge shows.
    reuse_px: float = 0.5
    backend: str = "egl"
    device: RenderDevice = "auto"  # auto/gpu: a GPU when present, else Mesa llvmpipe on the CPU


@dataclass(frozen=True)
class Overlay:
    """Premultiplied BGRA (h, w, 4) uint8 of the glasses, placed at pixel (x, y) of the frame."""

    premul_bgra: np.ndarray
    x: int
    y: int

    @property
    def alpha(self) -> np.ndarray:
        """(h, w) float32 coverage 0..1."""
        return self.premul_bgra[..., 3].astype(np.float32) / 255.0

    def alpha_at(self, pixels: np.ndarray) -> np.ndarray:
        """(n,) coverage at (n, 2) frame pixel coordinates; 0 outside the overlay."""
        px = np.floor(np.asarray(pixels, dtype=np.float64)).astype(int)
        h, w = self.premul_bgra.shape[:2]
        cx, cy = px[:, 0] - self.x, px[:, 1] - self.y
        inside = (cx >= 0) & (cy >= 0) & (cx < w) & (cy < h)
        out = np.zeros(len(px), dtype=np.float32)
        out[inside] = self.premul_bgra[cy[inside], cx[inside], 3] / 255.0
        return out


@dataclass
class RenderResult:
    """The composited frame, the drawn box (x0, y0, x1, y1) or None, and stage timings."""

    image: np.ndarray
    bbox: tuple[int, int, int, int] | None
    timings_ms: dict[str, float] = field(default_factory=dict)


@lru_cache(maxsize=1)
def _face_to_glasses() -> np.ndarray:
    return np.linalg.inv(glasses_to_face())


def _mat4(m: np.ndarray) -> bytes:
    return np.asarray(m, dtype="f4").T.tobytes()  # GLSL matrices are column-major


class GlassesRenderer:
    """Offscreen glasses renderer; one per thread.

    The GL context is created on first use in the calling thread and reused for every frame;
    a later call from another thread raises RenderError. Framebuffers are sized to the glasses'
    box (targets.BoxTargets, grown in steps); product meshes are uploaded once per SKU.
    """

    def __init__(self, options: RenderOptions | None = None) -> None:
        self.options = options or RenderOptions()
        self._ctx: Any = None
        self.device: ContextChoice | None = None  # which EGL device the context runs on
        self._thread: int | None = None
        self._targets: BoxTargets | None = None
        self.aa = AAChoice("none")  # resolved per device when the context is made
        self._products: dict[str, GpuProduct] = {}
        self._drawn: DrawnOverlays[Overlay] = DrawnOverlays(self.options.reuse_px,
                                                            REUSED_OVERLAYS)

    # -- GL resources ---------------------------------------------------------------------
    def _ensure_context(self) -> None:
        me = threading.get_ident()
        if self._ctx is not None:
            if me != self._thread:
                raise RenderError("GlassesRenderer is bound to the thread that first used it; "
                                   "create one renderer per thread")
            return
        import moderngl

        self._mgl = moderngl
        self.device = create_context(self.options.device, self.options.backend)
        ctx = self.device.ctx
        self._ctx, self._thread = ctx, me
        opts = self.options
        self.aa = choose_aa(opts.antialias, opts.msaa_samples, opts.ssaa_factor,
                            software=self.device.software, max_samples=ctx.max_samples)
        self.samples = self.aa.samples
        self._prog = ctx.program(vertex_shader=shaders.GLASSES_VS,
                                 fragment_shader=shaders.GLASSES_FS)
        self._occ_prog = ctx.program(vertex_shader=shaders.OCCLUDER_VS,
                                     fragment_shader=shaders.OCCLUDER_FS)
        self._resolve_prog = ctx.program(vertex_shader=shaders.RESOLVE_VS,
                                         fragment_shader=shaders.RESOLVE_FS)
        quad = np.array([-1, -1, 1, -1, -1, 1, 1, 1], dtype="f4")
        self._quad_buf = ctx.buffer(quad.tobytes())
        self._quad_vao = ctx.vertex_array(self._resolve_prog, [(self._quad_buf, "2f", "in_pos")])
        verts, tris = head_proxy()
        self._occ_bufs = (ctx.buffer(verts.tobytes()), ctx.buffer(tris.astype("u4").tobytes()))
        self._occ_vao = ctx.vertex_array(self._occ_prog, [(self._occ_bufs[0], "3f", "in_pos")],
                                         index_buffer=self._occ_bufs[1], index_element_size=4)
        self._targets = BoxTargets(ctx, self._resolve_prog, self._quad_vao)

    @property
    def gl_renderer(self) -> str:
        self._ensure_context()
        with self._ctx:
            return str(self._ctx.info["GL_RENDERER"])

    def _gpu_product(self, product: GlassesProduct) -> GpuProduct:
        # Keyed by the loaded scene too, so a product re-uploaded under the same SKU is redrawn.
        key = f"{product.sku}:{id(product.scene)}"
        gp = self._products.get(key)
        if gp is None:
            if len(self._products) >= MAX_CACHED_PRODUCTS:
                for old in self._products.values():
                    old.release()
                self._products.clear()
            gp = self._products[key] = GpuProduct(self._ctx, self._prog, product)
        return gp

    # -- drawing --------------------------------------------------------------------------
    def model_matrix(self, face: Face, pose: HeadPose, camera: Camera) -> np.ndarray:
        """(4, 4) GLB mm -> camera cm used for this face (see RenderOptions.anchor_bridge)."""
        bridge_px = None
        if self.options.anchor_bridge:
            w, h = face.image_size
            scale = np.array([camera.width / w, camera.height / h])
            bridge_px = face.xy[CANONICAL_BRIDGE_ID].astype(np.float64) * scale
        return anchored_glasses_to_camera(pose.matrix, bridge_px, camera)

    def render_overlay(self, face: Face | None, pose: HeadPose | None, camera: Camera,
                       product: GlassesProduct, variant: str | None = None,
                       *, occluder: bool | None = None) -> Overlay | None:
        """Draw the glasses for one pose; premultiplied BGRA crop of the drawn box, or None."""
        if face is None or pose is None:
            return None  # nothing is drawn where no face was found
        self._ensure_context()
        var = product.variant(variant)
        with self._ctx:
            gp = self._gpu_product(product)
        w, h = camera.width, camera.height
        model_view = self.model_matrix(face, pose, camera)
        if not np.isfinite(model_view).all():
            return None
        with self._ctx:
            points = gp.fit(pose if self.options.fit_temples else None)
        pts = points @ model_view[:3, :3].T + model_view[:3, 3]
        pts = pts[pts[:, 2] < -self.options.near_cm]
        if len(pts) == 0:
            return None
        px = camera.project(pts)
        # The product object itself (held by the entry, so its id is not reused): a copy with
        # another material or scene is another drawing.
        key = (product, var.name, self.options.occluder if occluder is None else occluder, w, h)
        hit = self._drawn.find(key, px)
        if hit is not None:
            return hit.overlay
        x0 = max(int(np.floor(px[:, 0].min())) - BBOX_PAD_PX, 0)
        y0 = max(int(np.floor(px[:, 1].min())) - BBOX_PAD_PX, 0)
        x1 = min(int(np.ceil(px[:, 0].max())) + BBOX_PAD_PX, w)
        y1 = min(int(np.ceil(px[:, 1].max())) + BBOX_PAD_PX, h)
        if x1 <= x0 or y1 <= y0:
            self._drawn.add(key, px, None)
            return None
        box_gl = (x0, h - y1, x1 - x0, y1 - y0)  # GL's origin is the bottom-left corner
        # Make this renderer's context current for the frame (and restore the previous one), so
        # several renderers in one thread (tests, tools) never draw into each other's context.
        targets = self._targets
        assert targets is not None  # made with the context
        proj = crop_projection(camera.projection_matrix(self.options.near_cm,
                                                        self.options.far_cm), box_gl, w, h)
        with self._ctx:
            viewport = targets.prepare(x1 - x0, y1 - y0, self.aa)
            # The head proxy moves with the glasses (the anchoring shift included), so the
            # temples fitted outside it in the glasses' frame stay outside it on screen.
            head_to_cam = model_view @ _face_to_glasses()
            self._draw(gp, var, product, model_view, head_to_cam, proj, viewport,
                       self.options.occluder if occluder is None else occluder)
            premul = targets.read(x1 - x0, y1 - y0)
        premul.flags.writeable = False  # may be handed out again (reuse_px)
        overlay = Overlay(premul, x0, y0)
        self._drawn.add(key, px, overlay)
        return overlay

    @property
    def draws(self) -> int:
        """Overlays drawn (GL) ..."""
        return self._drawn.draws

    @property
    def reuses(self) -> int:
        """... and reused unchanged (RenderOptions.reuse_px)."""
        return self._drawn.reuses

    def _draw(self, gp: GpuProduct, var: Variant, product: GlassesProduct,
              model_view: np.ndarray, face_to_cam: np.ndarray, proj: np.ndarray,
              viewport: tuple[int, int, int, int], occluder: bool) -> None:
        """Draw into the box-sized target; proj is already narrowed to the box."""
        assert self._targets is not None
        mgl, ctx, fbo = self._mgl, self._ctx, self._targets.draw_fbo
        fbo.use()
        fbo.viewport = viewport
        fbo.scissor = viewport  # the target may be larger than this frame's box
        fbo.depth_mask = True
        fbo.color_mask = (True, True, True, True)
        fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0, viewport=viewport)
        ctx.enable(mgl.DEPTH_TEST)
        ctx.disable(mgl.CULL_FACE | mgl.BLEND)
        if occluder:
            fbo.color_mask = (False, False, False, False)
            self._occ_prog["u_proj"].write(_mat4(proj))
            self._occ_prog["u_mv"].write(_mat4(face_to_cam))
            self._occ_prog["u_push"].value = self.options.occluder_push_cm
            # The head proxy is closed and wound outward (counter-clockwise seen from outside):
            # its back faces never hold the nearest depth, so skipping them changes no pixel
            # and saves llvmpipe their setup and depth tests.
            ctx.front_face = "ccw"
            ctx.enable(mgl.CULL_FACE)
            self._occ_vao.render(mgl.TRIANGLES)
            ctx.disable(mgl.CULL_FACE)
            fbo.color_mask = (True, True, True, True)
        prog = self._prog
        prog["u_mvp"].write(_mat4(proj @ model_view))
        prog["u_mv"].write(_mat4(model_view))
        nrm = inverse_3x3(model_view[:3, :3]).T
        prog["u_nrm"].write(np.asarray(nrm, dtype="f4").T.tobytes())
        prog["u_light_dir"].value = self.options.light_dir
        prog["u_ambient"].value = self.options.ambient
        for part, vao, _ in gp.parts:
            lens = part.kind == LENS
            if lens:  # translucent, premultiplied: blend over, keep the frame's depth
                ctx.enable(mgl.BLEND)
                ctx.blend_func = mgl.ONE, mgl.ONE_MINUS_SRC_ALPHA
                fbo.depth_mask = False
            metallic, rough = shading(part, product)
            prog["u_color"].value = part_color(part, var)
            prog["u_metallic"].value = metallic
            prog["u_roughness"].value = rough
            prog["u_is_lens"].value = 1.0 if lens else 0.0
            vao.render(mgl.TRIANGLES)
        ctx.disable(mgl.BLEND)
        fbo.depth_mask = True
        fbo.scissor = None

    def render(self, frame_bgr: np.ndarray, face: Face | None, pose: HeadPose | None,
               camera: Camera, product: GlassesProduct, variant: str | None = None
               ) -> RenderResult:
        """Draw and composite the glasses onto the frame (a copy unless options.in_place)."""
        _check_frame(frame_bgr, camera)
        image = frame_bgr if self.options.in_place else frame_bgr.copy()
        return self._render_into(image, face, pose, camera, product, variant)

    def _render_into(self, image: np.ndarray, face: Face | None, pose: HeadPose | None,
                     camera: Camera, product: GlassesProduct, variant: str | None
                     ) -> RenderResult:
        t0 = time.perf_counter()
        overlay = self.render_overlay(face, pose, camera, product, variant)
        t1 = time.perf_counter()
        if overlay is None:
            return RenderResult(image, None, {"render_ms": (t1 - t0) * 1e3, "composite_ms": 0.0})
        composite_premultiplied(image, overlay.premul_bgra, overlay.x, overlay.y)
        t2 = time.perf_counter()
        h, w = overlay.premul_bgra.shape[:2]
        return RenderResult(image, (overlay.x, overlay.y, overlay.x + w, overlay.y + h),
                            {"render_ms": (t1 - t0) * 1e3, "composite_ms": (t2 - t1) * 1e3})

    def render_faces(self, frame_bgr: np.ndarray, faces: list[Face], camera: Camera,
                     product: GlassesProduct, variant: str | None = None) -> RenderResult:
        """Estimate each face's pose and draw glasses on all of them; [] leaves the frame as is."""
        _check_frame(frame_bgr, camera)
        image = frame_bgr if self.options.in_place else frame_bgr.copy()
        boxes, timings = [], {"render_ms": 0.0, "composite_ms": 0.0}
        for face in faces:
            try:
                pose = estimate_pose(face, camera)
            except PoseError:  # degenerate landmarks: MediaPipe drops such faces too
                continue
            res = self._render_into(image, face, pose, camera, product, variant)
            if res.bbox is not None:
                boxes.append(res.bbox)
            for k in timings:
                timings[k] += res.timings_ms.get(k, 0.0)
        bbox = None
        if boxes:
            b = np.array(boxes)
            bbox = (int(b[:, 0].min()), int(b[:, 1].min()), int(b[:, 2].max()), int(b[:, 3].max()))
        return RenderResult(image, bbox, timings)

    def close(self) -> None:
        """Release GL objects and the context (from the owning thread)."""
        if self._ctx is None:
            return
        with self._ctx:
            for gp in self._products.values():
                gp.release()
            if self._targets is not None:
                self._targets.release()
        self._ctx.release()
        self._ctx, self._products, self._targets = None, {}, None
        self._drawn.clear()

    def __enter__(self) -> GlassesRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_frame(frame_bgr: np.ndarray, camera: Camera) -> None:
    if frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3 or frame_bgr.dtype != np.uint8:
        raise FrameError(f"expected a uint8 BGR frame, got {frame_bgr.dtype} {frame_bgr.shape}")
    if frame_bgr.shape[:2] != (camera.height, camera.width):
        raise RenderError(f"frame is {frame_bgr.shape[1]}x{frame_bgr.shape[0]} but the camera is "
                         f"{camera.width}x{camera.height}")
