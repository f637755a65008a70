"""create_app(settings): the FastAPI application, its routers and its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI

from service.access import endpoints as key_endpoints
from service.access import session_endpoints
from service.analytics import endpoints as analytics_endpoints
from service.body_limit import BodySizeLimit
from service.db.engine import make_engine
from service.db.migrate import upgrade
from service.demo import endpoints as demo_endpoints
from service.errors import add_exception_handlers
from service.handoff import endpoints as handoff_endpoints
from service.offers import endpoints as offers_endpoints
from service.offers.ranking import Item
from service.openapi import install_openapi
from service.ops import docs, headers, health, metrics
from service.ops.log_redaction import install_redaction
from service.settings import Settings
from service.shoppers import endpoints as shopper_endpoints
from service.shoppers.retention import run_retention
from service.touchpoints import endpoints as event_endpoints
from service.touchpoints import segment
from service.touchpoints.sink import EventSink
from service.tryon import endpoints as tryon_endpoints
from service.tryon import products, stream
from service.wiring import backfill, build_runtime, close_runtime

ROUTERS = (
    health,
    metrics,
    key_endpoints,
    session_endpoints,
    tryon_endpoints,
    stream,
    products,
    event_endpoints,
    segment,
    shopper_endpoints,
    handoff_endpoints,
    analytics_endpoints,
    offers_endpoints,
)


def create_app(
    settings: Settings | None = None,
    *,
    event_sink: EventSink | None = None,
    offer_items: Mapping[str, Item] | None = None,
) -> FastAPI:
    """The app; settings are read once, here. event_sink/offer_items: see build_runtime."""
    settings = settings or Settings()
    install_redaction()  # no credential in uvicorn's access/error logs (idempotent)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Engine and everything else in the lifespan, never at import: one per app.
        engine = make_engine(settings.database_url)
        try:
            if settings.migrate_on_startup:
                await anyio.to_thread.run_sync(upgrade, engine)
                await anyio.to_thread.run_sync(backfill, engine)
            rt = await anyio.to_thread.run_sync(
                lambda: build_runtime(
                    settings, engine, event_sink=event_sink, offer_items=offer_items
                )
            )
            if settings.retention_on_startup:
                await anyio.to_thread.run_sync(
                    run_retention, rt.sessions, settings.retention_days, rt.purgers
                )
            app.state.runtime = rt
            try:
                yield
            finally:
                await anyio.to_thread.run_sync(close_runtime, rt)
        finally:
            engine.dispose()

    app = FastAPI(
        title="Try-on and personalization service",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served from local assets by service.ops.docs (no CDN)
        redoc_url=None,
    )
    add_exception_handlers(app)
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)
    headers.install(app)  # outermost: on every response, the last-resort 500s included
    for module in ROUTERS:
        app.include_router(module.router)
    demo_endpoints.install(app, settings)
    install_openapi(app)
    docs.install(app)
    return app
