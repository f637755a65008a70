"""TryOnPipeline: one stream's frame path (landmarks, smoothing, pose, measure, overlay)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from vision.errors import PoseError, SelectionError
from vision.frame_header import read_header
from vision.frames import FrameLimits, decode, encode_jpeg, to_bgr
from vision.geometry import Camera, CanonicalFace, HeadPose, estimate_pose
from vision.landmarks import Face, FaceTracker, FaceTrackerOptions, RunningMode
from vision.measure import FaceMeasurements, fit_advice, measure_face
from vision.meter import FaceMeter
from vision.smoothing import LandmarkSmoother, SmoothingOptions
from vision.tryon_result import Selection, TryOnResult

if TYPE_CHECKING:
    from vision.catalog import GlassesProduct
    from vision.lipstick import LipstickPainter, Shade
    from vision.render import GlassesRenderer, RenderOptions

STAGES = ("decode", "landmarks", "smooth", "pose", "measure", "render", "encode")
# A stream forgets its pooled measurements after this many frames in a row without a face.
MEASURE_RESET_AFTER_MISSES = 10


class ProductCatalog(Protocol):
    """What the pipeline needs from a glasses catalog: `get(sku)` raising CatalogError."""

    def get(self, sku: str) -> GlassesProduct: ...


class ShadeLookup(Protocol):
    """What the pipeline needs from a shade catalog: `get(shade_id)` raising CatalogError."""

    def get(self, shade_id: str) -> Shade: ...


@dataclass(frozen=True)
class PipelineOptions:
    """Per-stream options. VIDEO tracks and smooths across frames; IMAGE detects every frame."""

    running_mode: RunningMode = RunningMode.VIDEO
    max_faces: int = 1
    fov_y_deg: float = 63.0
    # Applied in VIDEO mode only (set enabled=False to switch it off).
    smoothing: SmoothingOptions = field(default_factory=SmoothingOptions)
    limits: FrameLimits = field(default_factory=FrameLimits)
    jpeg_quality: int = 85
    # Processing size: a larger frame is decoded smaller (JPEG: inside the DCT) to this long
    # side; None keeps every frame at its own size.
    max_side: int | None = None
    # Landmark backend and its ONNX Runtime options (FaceTrackerOptions.backend, .providers,
    # .batch_window_ms).
    landmark_backend: str = "mediapipe"
    landmark_providers: tuple[str, ...] = ()
    landmark_batch_window_ms: float = 0.0


RendererProvider = Callable[[], "GlassesRenderer"]


class ThreadLocalRenderers:
    """Hands each thread its own GlassesRenderer, created on first use in that thread.

    A GL context belongs to the thread that made it, so renderers are per worker thread (reused
    across frames and streams), never per pipeline.
    """

    def __init__(self, options: RenderOptions | None = None) -> None:
        self._options = options
        self._local = threading.local()
        self._lock = threading.Lock()
        self.created = 0
        self._all: list[GlassesRenderer] = []

    def __call__(self) -> GlassesRenderer:
        renderer = getattr(self._local, "renderer", None)
        if renderer is None:
            from vision.render import GlassesRenderer, RenderOptions  # GL import kept lazy

            # in_place: the pipeline hands over a frame it owns (see TryOnPipeline._overlay).
            renderer = GlassesRenderer(self._options or RenderOptions(in_place=True))
            self._local.renderer = renderer
            with self._lock:
                self.created += 1
                self._all.append(renderer)
        return renderer

    def devices(self) -> list[str]:
        """The GL renderer names of the workers' contexts that have drawn (llvmpipe, a GPU)."""
        with self._lock:
            return sorted({r.device.gl_renderer for r in self._all if r.device is not None})


_default_renderers: ThreadLocalRenderers | None = None
_default_lock = threading.Lock()


def default_renderers() -> ThreadLocalRenderers:
    """A process-wide ThreadLocalRenderers with default options."""
    global _default_renderers
    with _default_lock:
        if _default_renderers is None:
            _default_renderers = ThreadLocalRenderers()
        return _default_renderers


class TryOnPipeline:
    """Owns one stream's state: tracker, landmark filter, camera model and the selection.

    Not thread-safe: one pipeline is driven by one thread at a time (the service guarantees it
    by keeping at most one frame of a stream in flight). Renderers come from `renderers`, a
    per-thread provider, because GL contexts are bound to threads.
    """

    def __init__(
        self,
        options: PipelineOptions,
        glasses: ProductCatalog,
        shades: ShadeLookup,
        renderers: RendererProvider | None = None,
    ) -> None:
        self.options = options
        self.glasses = glasses
        self.shades = shades
        self._renderers = renderers or default_renderers()
        self._tracker = FaceTracker(
            FaceTrackerOptions(
                running_mode=options.running_mode,
                max_faces=options.max_faces,
                limits=options.limits,
                backend=options.landmark_backend,
                providers=options.landmark_providers,
                batch_window_ms=options.landmark_batch_window_ms,
            )
        )
        self._filter = (
            LandmarkSmoother(options.smoothing)
            if options.smoothing.enabled and options.running_mode is RunningMode.VIDEO
            else None
        )
        self._canonical = CanonicalFace.load()
        # VIDEO: one FaceMeter per stream pools the measurements (what the stream reports,
        # with its uncertainty and convergence); IMAGE: each photo is measured on its own.
        self._meter = FaceMeter() if options.running_mode is RunningMode.VIDEO else None
        self._missed = 0
        self._camera: Camera | None = None
        self._painter: LipstickPainter | None = None
        # One of the two is set, matching selection.kind (typed apart so each use needs no check).
        self._glasses: GlassesProduct | None = None
        self._shade: Shade | None = None
        self.selection = Selection()
        self._frames = 0
        self._t0 = time.perf_counter()

    # -- selection -----------------------------------------------------------------------
    def select_glasses(self, sku: str, variant: str | None = None) -> Selection:
        product = self.glasses.get(sku)
        chosen = product.variant(variant)  # CatalogError naming the known variants
        self._glasses, self._shade = product, None
        self.selection = Selection(kind="glasses", sku=sku, variant=chosen.name)
        return self.selection

    def select_shade(
        self, shade_id: str, intensity: float = 1.0, finish: str | None = None
    ) -> Selection:
        from vision.lipstick import Finish, check_intensity  # optional: glasses work without it

        k = check_intensity(intensity)  # OptionsError outside 0..1
        shade = self.shades.get(shade_id)
        chosen = Finish.parse(finish) if finish is not None else shade.finish  # OptionsError
        self._glasses, self._shade = None, shade
        self.selection = Selection(kind="shade", sku=shade.sku, shade=shade_id, intensity=k,
                                   finish=chosen.value)
        return self.selection

    def set_intensity(self, intensity: float) -> Selection:
        if self.selection.kind != "shade" or self.selection.shade is None:
            raise SelectionError("intensity applies to a shade; select a shade first")
        return self.select_shade(self.selection.shade, intensity, self.selection.finish)

    def clear(self) -> None:
        self._glasses = self._shade = None
        self.selection = Selection()

    # -- processing ----------------------------------------------------------------------
    def process_bytes(
        self, data: bytes, t_s: float | None = None, *, encode: bool = True,
        region: bool = False,
    ) -> TryOnResult:
        """Decode JPEG/PNG bytes, process, and (when encode) JPEG-encode the composited frame.

        region: encode only the box the overlay changed (result.region says where), for a
        client that keeps the frame it sent and draws the box over it; the whole frame when
        it was scaled down while decoding (its pixels are not the client's then)."""
        t = time.perf_counter()
        frame = decode(data, self.options.limits, max_side=self.options.max_side)
        decode_ms = (time.perf_counter() - t) * 1000.0
        whole = not region or self._downscaled(data, frame)
        result = self.process(frame, t_s, _owned=True)
        result.timings_ms["decode"] = decode_ms
        if encode:
            t = time.perf_counter()
            if whole:
                result.jpeg = encode_jpeg(result.image, self.options.jpeg_quality)
            elif result.changed is None:
                result.jpeg, result.region = b"", (0, 0, 0, 0)
            else:
                x0, y0, x1, y1 = result.changed
                result.jpeg = encode_jpeg(result.image[y0:y1, x0:x1], self.options.jpeg_quality)
                result.region = (x0, y0, x1 - x0, y1 - y0)
            result.timings_ms["encode"] = (time.perf_counter() - t) * 1000.0
        result.timings_ms["total"] = sum(result.timings_ms[k] for k in STAGES if k in
                                         result.timings_ms)
        return result

    def _downscaled(self, data: bytes, frame: np.ndarray) -> bool:
        """Whether decoding scaled the frame down to max_side (then its pixels are not the
        client's). Without max_side none is, so the header is read again only with it."""
        if not self.options.max_side:
            return False
        header = read_header(data)
        return sorted(frame.shape[:2]) != sorted((header.height, header.width))

    def process(
        self, frame_bgr: np.ndarray, t_s: float | None = None, *, _owned: bool = False
    ) -> TryOnResult:
        """Landmarks -> smoothing -> pose -> measurements -> overlay on one BGR frame.

        t_s: the frame's capture time in seconds (VIDEO mode smoothing); defaults to now.
        The input array is not modified unless the pipeline made it itself.
        """
        timings: dict[str, float] = {}
        frame = to_bgr(frame_bgr, self.options.limits)
        h, w = frame.shape[:2]
        if self._camera is None or (self._camera.width, self._camera.height) != (w, h):
            self._camera = Camera(w, h, self.options.fov_y_deg)
            if self._filter is not None:
                self._filter.reset()
            if self._meter is not None:
                self._meter.reset()
        camera = self._camera
        self._frames += 1

        t = time.perf_counter()
        faces = self._tracker.process(frame)
        t1 = time.perf_counter()
        timings["landmarks"] = (t1 - t) * 1000.0

        if self._filter is not None:
            # An empty frame resets the filters: the next face starts a new track, not a jump.
            faces = self._filter.smooth(faces, t_s if t_s is not None else t1 - self._t0)
        t2 = time.perf_counter()
        timings["smooth"] = (t2 - t1) * 1000.0

        pose: HeadPose | None = None
        measurements: FaceMeasurements | None = None
        if faces:
            try:
                pose = estimate_pose(faces[0], camera, self._canonical)
            except PoseError:
                # Degenerate landmarks (MediaPipe drops such faces): nothing to place or
                # measure, so this frame goes out unchanged with applied=False, not as an error.
                pose = None
            t3 = time.perf_counter()
            timings["pose"] = (t3 - t2) * 1000.0
            if pose is not None:
                if self._meter is not None:
                    measurements = self._meter.update(faces[0], pose, camera)
                else:
                    measurements = measure_face(faces[0], pose, camera)
            timings["measure"] = (time.perf_counter() - t3) * 1000.0
            self._missed = 0
        else:
            timings["pose"] = timings["measure"] = 0.0
            self._missed += 1
            if self._meter is not None and self._missed == MEASURE_RESET_AFTER_MISSES:
                self._meter.reset()  # the shopper left: the next face is measured anew

        t = time.perf_counter()
        image, applied, changed = self._overlay(frame, faces, pose, camera, owned=_owned)
        timings["render"] = (time.perf_counter() - t) * 1000.0
        timings["total"] = sum(timings.values())
        glasses = self._glasses if self.selection.kind == "glasses" else None
        return TryOnResult(
            image=image, faces=faces, pose=pose, measurements=measurements, timings_ms=timings,
            selection=self.selection, applied=applied, frame_index=self._frames,
            product=self.product, changed=changed,
            fit=fit_advice(measurements, glasses.frame_width_mm if glasses is not None else None),
        )

    def _overlay(
        self, frame: np.ndarray, faces: list[Face], pose: HeadPose | None, camera: Camera,
        *, owned: bool,
    ) -> tuple[np.ndarray, bool, tuple[int, int, int, int] | None]:
        """The composited frame, whether the selection was applied, and the box (x0, y0, x1,
        y1) whose pixels changed (None: none did)."""
        sel = self.selection
        if not faces or pose is None:
            return frame, False, None
        if sel.kind == "glasses" and self._glasses is not None:
            # The renderer may composite in place; never touch the caller's array.
            target = frame if owned else frame.copy()
            res = self._renderers().render(target, faces[0], pose, camera, self._glasses,
                                           sel.variant)
            return res.image, res.bbox is not None, res.bbox
        if sel.kind == "shade" and self._shade is not None:
            if self._painter is None:
                from vision.lipstick import LipstickPainter

                self._painter = LipstickPainter()
            image = self._painter.apply(frame, faces[0], self._shade, intensity=sel.intensity,
                                        finish=sel.finish, in_place=owned)
            return image, True, self._painter.last_box
        return frame, False, None

    @property
    def product(self) -> GlassesProduct | Shade | None:
        """The selected GlassesProduct or Shade (None when nothing is selected)."""
        return self._glasses if self._glasses is not None else self._shade

    @property
    def frames_processed(self) -> int:
        return self._frames

    def close(self) -> None:
        """Release the tracker (its MediaPipe graph) and what the stream held; idempotent."""
        self._tracker.close()
        self._filter = None
        self._painter = None
        self._glasses = self._shade = None
        self.selection = Selection()

    def __enter__(self) -> TryOnPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
