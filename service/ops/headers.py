"""Response headers every answer carries (a small ASGI middleware, no body buffering)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Browsers must not guess a content type (an uploaded or echoed body is never run as a script).
NOSNIFF = (b"x-content-type-options", b"nosniff")


class SecurityHeaders:
    """Adds `X-Content-Type-Options: nosniff` to every HTTP response (and WebSocket denial)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.http.response.start"):
                headers = list(message.get("headers", []))
                if not any(k.lower() == NOSNIFF[0] for k, _ in headers):
                    headers.append(NOSNIFF)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: Starlette) -> None:
    """Wrap the whole middleware stack, Starlette's ServerErrorMiddleware included, so that
    the last-resort error responses carry the headers too (add_middleware would sit inside
    it)."""
    build = app.build_middleware_stack

    def build_with_headers() -> ASGIApp:
        return SecurityHeaders(build())

    app.build_middleware_stack = build_with_headers  # type: ignore[method-assign]
