"""Prometheus metrics: per-stage frame latency, active streams, dropped frames, errors."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import APIRouter, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from service.deps import RuntimeDep
from service.ops.devices import landmark_providers

router = APIRouter(tags=["health"])

# 0.5 ms .. 2 s: a landmark step is ~3 ms, a whole 720p frame tens of ms.
_BUCKETS = (0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.0, 2.0)


class TryOnMetrics:
    """One registry per app (several apps in one test process must not collide)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.stage_seconds = Histogram(
            "tryon_frame_stage_seconds",
            "Per-stage frame latency",
            ["stage", "path"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.frame_seconds = Histogram(
            "tryon_frame_seconds",
            "Whole-frame processing time on a worker",
            ["path"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.frames = Counter("tryon_frames", "Frames processed", ["path"], registry=r)
        self.active_streams = Gauge("tryon_active_streams", "Open try-on streams", registry=r)
        self.dropped_frames = Counter(
            "tryon_dropped_frames", "Stale stream frames replaced by newer ones", registry=r
        )
        self.rejected_streams = Counter(
            "tryon_rejected_streams", "Streams refused at max_streams", registry=r
        )
        self.errors = Counter("tryon_errors", "Try-on errors by code", ["code"], registry=r)
        self.events_dropped = Counter(
            "tryon_events_dropped",
            "Stream events dropped (buffer full, spool full, or failing alone)",
            registry=r,
        )
        # Set to read the batcher's spool (service.wiring): events waiting for the database.
        self.events_spooled = Gauge(
            "tryon_events_spooled",
            "Stream events spooled on disk while the database is unavailable",
            registry=r,
        )
        self.events_rejected = Counter(
            "tryon_events_rejected",
            "Touchpoints rejected by ingest, by reason code and source (api, segment, stream)",
            ["reason", "source"],
            registry=r,
        )
        self.events_replayed = Counter(
            "tryon_events_replayed",
            "Spooled stream events written once the database answered again",
            registry=r,
        )
        # Set at scrape time (labels change when a worker first draws or builds its models).
        self.devices = Gauge(
            "tryon_device_info",
            "Where the vision runs: landmark backend/provider and GL render device (value 1)",
            ["stage", "backend", "device"],
            registry=r,
        )

    def set_devices(self, landmark_backend: str, providers: list[str], gl: list[str]) -> None:
        self.devices.clear()
        for p in providers or ["mediapipe-cpu" if landmark_backend == "mediapipe" else "none"]:
            self.devices.labels("landmarks", landmark_backend, p).set(1)
        for d in gl:
            self.devices.labels("render", "opengl", d).set(1)

    def observe(self, timings_ms: Mapping[str, float], path: str) -> None:
        for stage, ms in timings_ms.items():
            if stage == "total":
                self.frame_seconds.labels(path).observe(ms / 1000.0)
            else:
                self.stage_seconds.labels(stage, path).observe(ms / 1000.0)
        self.frames.labels(path).inc()


@router.get("/metrics", include_in_schema=False)
def metrics(rt: RuntimeDep) -> Response:
    backend = rt.settings.landmark_backend
    rt.metrics.set_devices(backend, landmark_providers(backend), rt.renderers.devices())
    return Response(generate_latest(rt.metrics.registry), media_type=CONTENT_TYPE_LATEST)
