"""create_app(settings): the FastAPI application with its routers and lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service.api import health
from service.errors import add_exception_handlers
from service.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield

    app = FastAPI(title="Try-on and personalization service", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    add_exception_handlers(app)
    app.include_router(health.router)
    return app
