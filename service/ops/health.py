"""Liveness and readiness probes: /healthz, /readyz."""

import os

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text

from service.deps import RuntimeDep
from service.ops.devices import landmark_providers
from service.ops.schemas import HealthOut, ReadyOut

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _check_db(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


@router.get(
    "/readyz",
    responses={
        200: {"model": ReadyOut, "description": "Ready"},
        503: {"model": ReadyOut, "description": "A dependency does not answer"},
    },
)
async def readyz(rt: RuntimeDep) -> JSONResponse:
    """Ready when the database answers (and Redis, when configured)."""
    checks: dict[str, str] = {}
    try:
        await run_in_threadpool(_check_db, rt.engine)
        checks["database"] = "ok"
    except Exception as exc:  # any failure means "not ready", reported, never raised
        checks["database"] = f"error: {type(exc).__name__}"
    if rt.redis is not None:
        try:
            await run_in_threadpool(rt.redis.ping)
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values())
    # Informational: which GL device the workers render on (empty until a frame was drawn).
    devices = rt.renderers.devices()
    return JSONResponse(
        {
            "status": "ready" if ok else "unavailable",
            "checks": checks,
            "render_devices": devices,
            "landmark_backend": rt.settings.landmark_backend,
            "landmark_providers": landmark_providers(rt.settings.landmark_backend),
            "pid": os.getpid(),  # which worker process answered (several under the supervisor)
        },
        status_code=200 if ok else 503,
    )
