"""create_app(settings): the FastAPI application with its routers and lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI

from service.analytics import endpoints as analytics_endpoints
from service.api import demo, health
from service.body_limit import BodySizeLimit
from service.db.engine import make_engine, make_sessionmaker
from service.db.migrate import upgrade
from service.errors import add_exception_handlers
from service.handoff import endpoints as handoff_endpoints
from service.offers import endpoints as offers_endpoints
from service.settings import Settings
from service.shoppers import endpoints as shopper_endpoints
from service.shoppers.retention import run_retention
from service.touchpoints import endpoints as event_endpoints
from service.touchpoints import segment
from service.tryon_runtime import install as install_tryon
from service.tryon_runtime import tryon_runtime


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Engine in the lifespan, never at import: one per app, disposed on shutdown.
        engine = make_engine(settings.database_url)
        if settings.migrate_on_startup:
            await anyio.to_thread.run_sync(upgrade, engine)
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        if settings.retention_on_startup:
            await anyio.to_thread.run_sync(
                run_retention, app.state.sessionmaker, settings.retention_days
            )
        try:
            async with tryon_runtime(app):
                yield
        finally:
            engine.dispose()

    app = FastAPI(title="Try-on and personalization service", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    add_exception_handlers(app)
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)
    app.include_router(health.router)
    for router in (
        event_endpoints,
        segment,
        shopper_endpoints,
        handoff_endpoints,
        analytics_endpoints,
        offers_endpoints,
    ):
        app.include_router(router.router)
    install_tryon(app, settings)
    demo.install(app, settings)
    return app
