"""The Runtime: everything the app owns, built once at start-up and handed out by service.deps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the types only: this module sits below the features it names
    from redis import Redis
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from service.access.keys import Authenticator
    from service.access.limits import RateLimiter
    from service.analytics.engines import AnalyticsRuntime
    from service.offers.service import OffersRuntime
    from service.ops.metrics import TryOnMetrics
    from service.settings import Settings
    from service.shoppers.erasure import Eraser
    from service.shoppers.retention import Purger
    from service.touchpoints.batcher import EventBatcher
    from service.touchpoints.service import Ingestor
    from service.tryon.catalog import CatalogService
    from service.tryon.pipelines import ImagePipelines, PipelineFactory
    from service.tryon.stream_leases import StreamLeases
    from service.tryon.workers import StreamRegistry, WorkerPool
    from vision.pipeline import ThreadLocalRenderers


@dataclass
class Runtime:
    """What one app instance owns. Built by service.wiring.build_runtime in the lifespan.

    Nothing here is shared across replicas: what must be shared lives in the database
    (or Redis), which every field that needs it reaches through `sessions`/`redis`.
    """

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    redis: Redis | None  # None: no Redis configured (limits fall back to the database)
    limiter: RateLimiter
    auth: Authenticator
    metrics: TryOnMetrics
    ingest: Ingestor
    erasers: tuple[Eraser, ...]
    purgers: tuple[Purger, ...]
    catalog: CatalogService
    pool: WorkerPool
    renderers: ThreadLocalRenderers
    pipelines: PipelineFactory
    image_pipelines: ImagePipelines
    streams: StreamRegistry  # this replica's streams (max_streams)
    stream_leases: StreamLeases  # each principal's streams, every replica's (shared)
    event_batcher: EventBatcher
    offers: OffersRuntime
    analytics: AnalyticsRuntime  # the event lake and the DuckDB engine of the reports
