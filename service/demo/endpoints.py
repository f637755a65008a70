"""The browser demo (/demo, kiosk mode) and dashboard (/dashboard): pages, static files, config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from service.deps import SettingsDep
from service.settings import Settings

router = APIRouter(tags=["demo"])

# Where the page finds the APIs it calls; the page reads these instead of hard-coding paths,
# so a moved endpoint is a one-line change here.
API_PATHS: dict[str, str] = {
    "sessions": "/v1/sessions",
    "stream_tickets": "/v1/tryon/stream-tickets",
    "stream": "/v1/tryon/stream",
    "render": "/v1/tryon/render",
    "products": "/v1/products",
    "shades": "/v1/shades",
    "events": "/v1/events",
    "offers": "/v1/shoppers/{id}/offers",
    "handoff": "/v1/handoff",
    "analytics": "/v1/analytics",
}
KIOSK_IDLE_S = 90  # a kiosk left alone this long starts over for the next shopper
EVENT_FLUSH_AT = 20  # events per batch before the page flushes early
EVENT_FLUSH_MS = 2000  # and at the latest this often
EVENT_QUEUE_MAX = 200  # bounded: the oldest events are dropped rather than blocking a frame


def _csp() -> str:
    """Same-origin only: the page may not load or call anything outside this service.

    Built from constants, never from request headers (a forged Host must not widen it);
    CSP level 3 'self' covers ws:/wss: to the page's own origin.
    """
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' blob: data:",
            "media-src 'self' blob: mediastream:",
            "connect-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'self'",
        ]
    )


def _page(settings: Settings, name: str) -> FileResponse:
    headers = {
        "Content-Security-Policy": _csp(),
        "X-Content-Type-Options": "nosniff",
        "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
        "Cache-Control": "no-cache",
        "Referrer-Policy": "no-referrer",
    }
    return FileResponse(Path(settings.demo_dir) / name, media_type="text/html", headers=headers)


@router.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
def root() -> RedirectResponse:
    """A person opening the service's address lands on the shopper page."""
    return RedirectResponse("/demo/", status_code=307)


@router.api_route("/demo", methods=["GET", "HEAD"], include_in_schema=False)
@router.api_route("/demo/", methods=["GET", "HEAD"], include_in_schema=False)
def demo_page(settings: SettingsDep) -> FileResponse:
    return _page(settings, "index.html")


@router.api_route("/dashboard", methods=["GET", "HEAD"], include_in_schema=False)
def dashboard_page(settings: SettingsDep) -> FileResponse:
    return _page(settings, "dashboard.html")


@router.get("/demo/config.json")
def demo_config(settings: SettingsDep) -> JSONResponse:
    """What the demo page needs to start: the public demo key and where the APIs live."""
    body: dict[str, Any] = {
        "api_key": settings.demo_api_key or None,
        "paths": API_PATHS,
        "kiosk_idle_s": KIOSK_IDLE_S,
        "events": {
            "flush_at": EVENT_FLUSH_AT,
            "flush_ms": EVENT_FLUSH_MS,
            "queue_max": EVENT_QUEUE_MAX,
        },
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


def install(app: FastAPI, settings: Settings) -> None:
    """Add the demo pages and mount client_demo/ at /demo/static."""
    app.include_router(router)
    app.mount(
        "/demo/static",
        StaticFiles(directory=Path(settings.demo_dir), check_dir=False),
        name="demo-static",
    )
