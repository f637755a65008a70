"""Liveness and readiness probes."""

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import text

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _check_db(request: Request) -> None:
    with request.app.state.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready when the database answers (and Redis, when configured)."""
    checks: dict[str, str] = {}
    try:
        await run_in_threadpool(_check_db, request)
        checks["database"] = "ok"
    except Exception as exc:  # any failure means "not ready", reported, never raised
        checks["database"] = f"error: {type(exc).__name__}"
    redis = getattr(request.app.state, "redis", None)
    if redis is not None:
        try:
            await run_in_threadpool(redis.ping)
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values())
    renderers = getattr(request.app.state, "renderers", None)
    # Informational: which GL device the workers render on (empty until a frame was drawn).
    devices = renderers.devices() if hasattr(renderers, "devices") else []
    return JSONResponse(
        {"status": "ready" if ok else "unavailable", "checks": checks, "render_devices": devices},
        status_code=200 if ok else 503,
    )
