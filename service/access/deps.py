"""Scope checks as FastAPI dependencies: KioskDep (kiosk keys, session tokens, admin),
DemoDep (what may mint sessions), AnalystDep, AdminDep."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPBearer

from service.access.credentials import api_key_from
from service.access.keys import SATISFIED_BY, Principal
from service.deps import RuntimeDep

# Declared for the OpenAPI document (security schemes); the key itself is read by
# api_key_from, the one parser, so both spellings work on every route.
_BEARER = HTTPBearer(
    auto_error=False, description="Authorization: Bearer <API key or session token st_...>"
)
_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")


def require_scope(scope: str) -> Callable[..., Awaitable[Principal]]:
    """Dependency: the caller's Principal, holding `scope` (or one that implies it)."""
    if scope not in SATISFIED_BY:
        raise ValueError(f"unknown scope {scope!r}")

    async def dependency(
        request: Request,
        rt: RuntimeDep,
        _bearer: Annotated[object, Depends(_BEARER)] = None,
        _header: Annotated[object, Depends(_HEADER)] = None,
    ) -> Principal:
        raw = api_key_from(request.headers)
        client = rt.auth.client_of(request.client.host if request.client else None, request.headers)
        principal = await run_in_threadpool(rt.auth.authenticate, raw, scope, client)
        request.state.principal = principal
        return principal

    dependency.__name__ = f"require_{scope}"
    return dependency


KioskDep = Annotated[Principal, Depends(require_scope("kiosk"))]
DemoDep = Annotated[Principal, Depends(require_scope("demo"))]
AnalystDep = Annotated[Principal, Depends(require_scope("analyst"))]
AdminDep = Annotated[Principal, Depends(require_scope("admin"))]
