"""Wires the try-on API into an app: routers, metrics, and the lifespan pieces it needs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI

from service.api import keys, metrics, products, stream, tryon
from service.auth import RateLimiter, bootstrap_keys
from service.settings import Settings

log = logging.getLogger(__name__)


def install(app: FastAPI, settings: Settings) -> None:
    """Routers and the metrics registry (needed before start-up)."""
    app.state.metrics = metrics.TryOnMetrics()
    for module in (tryon, stream, products, keys, metrics):
        app.include_router(module.router)


def _bootstrap(app: FastAPI) -> None:
    s: Settings = app.state.settings
    with app.state.sessionmaker.begin() as session:
        bootstrap_keys(session, s.demo_api_key or None, s.bootstrap_admin_key or None)


@asynccontextmanager
async def tryon_runtime(app: FastAPI) -> AsyncIterator[None]:
    """Start-up after the database is ready (app.state.engine / sessionmaker)."""
    from service.api.stream import StreamRegistry
    from service.catalog import CatalogService
    from service.stream_events import EventBatcher
    from service.touchpoints import DatabaseEventSink
    from service.workers import WorkerPool
    from vision.pipeline import ThreadLocalRenderers

    s: Settings = app.state.settings
    st = app.state
    redis_client = None
    if s.redis_url:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # Fail fast: a request must not hang on a dead Redis (the limiter falls back to the DB).
        redis_client = redis.Redis.from_url(
            s.redis_url,
            socket_timeout=1.0,
            socket_connect_timeout=1.0,
            retry=Retry(NoBackoff(), 1),
        )
    st.redis = redis_client
    st.rate_limiter = RateLimiter(st.engine, redis_client, prefix=s.redis_prefix)
    await anyio.to_thread.run_sync(_bootstrap, app)
    st.catalog = await anyio.to_thread.run_sync(CatalogService, s.assets_dir, st.sessionmaker)
    st.pool = WorkerPool(s.worker_threads, s.max_pending_renders)
    st.renderers = ThreadLocalRenderers(_render_options(s))
    st.image_pipelines = tryon.ImagePipelines(app)
    st.streams = StreamRegistry(s.max_streams)
    st.event_batcher = EventBatcher(
        getattr(st, "event_sink", None) or DatabaseEventSink(st.sessionmaker, source="stream"),
        batch_size=s.event_batch_size,
        interval_s=s.event_flush_interval_s,
        max_buffer=s.max_event_buffer,
        on_drop=st.metrics.events_dropped.inc,
    )
    try:
        yield
    finally:
        await anyio.to_thread.run_sync(st.pool.shutdown)
        await anyio.to_thread.run_sync(st.event_batcher.close)
        if redis_client is not None:
            redis_client.close()


def _render_options(s: Settings) -> object | None:
    try:
        from vision.render import RenderOptions
    except ImportError:  # the renderer is optional for lipstick-only or analysis deployments
        return None
    # in_place: the pipeline owns the decoded frame, so compositing into it saves a copy.
    return RenderOptions(
        msaa_samples=s.render_msaa_samples, in_place=True, device=s.render_device
    )
