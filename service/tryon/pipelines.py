"""Try-on pipelines built from settings: options, renderers, one IMAGE pipeline per worker."""

from __future__ import annotations

import threading

from service.settings import Settings
from service.tryon.catalog import CatalogService
from vision.frames import FrameLimits
from vision.landmarks import RunningMode
from vision.pipeline import PipelineOptions, ThreadLocalRenderers, TryOnPipeline
from vision.render import RenderOptions
from vision.smoothing import SmoothingOptions


def pipeline_options(settings: Settings, mode: RunningMode) -> PipelineOptions:
    return PipelineOptions(
        running_mode=mode,
        max_faces=settings.max_faces,
        fov_y_deg=settings.camera_fov_deg,
        smoothing=SmoothingOptions(
            min_cutoff=settings.smoothing_min_cutoff,
            beta=settings.smoothing_beta,
            d_cutoff=settings.smoothing_d_cutoff,
        ),
        limits=FrameLimits(
            max_pixels=settings.max_frame_pixels, max_side=settings.max_frame_side
        ),
        jpeg_quality=settings.jpeg_quality,
        max_side=settings.max_processing_side or None,
        landmark_backend=settings.landmark_backend,
        landmark_providers=tuple(
            p.strip() for p in settings.onnx_providers.split(",") if p.strip()),
        landmark_batch_window_ms=(
            settings.landmark_batch_window_ms if settings.landmark_backend == "onnx" else 0.0),
    )


def render_options(settings: Settings) -> RenderOptions:
    # in_place: the pipeline owns the decoded frame, so compositing into it saves a copy.
    return RenderOptions(
        msaa_samples=settings.render_msaa_samples,
        antialias=settings.render_antialias,
        in_place=True,
        device=settings.render_device,
        reuse_px=settings.render_reuse_px,
    )


class PipelineFactory:
    """Builds pipelines that share the app's catalog and per-thread GL renderers."""

    def __init__(
        self, settings: Settings, catalog: CatalogService, renderers: ThreadLocalRenderers
    ) -> None:
        self._settings = settings
        self._catalog = catalog
        self._renderers = renderers

    def make(self, mode: RunningMode) -> TryOnPipeline:
        return TryOnPipeline(
            pipeline_options(self._settings, mode),
            self._catalog,
            self._catalog.shades,
            renderers=self._renderers,
        )


class ImagePipelines:
    """One IMAGE-mode pipeline per worker thread, reused across requests (a tracker is
    expensive to build; its GL renderer is per thread anyway)."""

    def __init__(self, factory: PipelineFactory) -> None:
        self.factory = factory
        self._local = threading.local()

    def get(self) -> TryOnPipeline:
        pipe: TryOnPipeline | None = getattr(self._local, "pipeline", None)
        if pipe is None:
            pipe = self.factory.make(RunningMode.IMAGE)
            self._local.pipeline = pipe
        return pipe
