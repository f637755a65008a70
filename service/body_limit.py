"""ASGI middleware capping every HTTP request body at settings.max_body_bytes (413 JSON)."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import error_body


class BodySizeLimit:
    """Refuses a body over `limit` bytes before a route reads it into memory.

    A declared Content-Length over the limit is answered at once; a chunked or lying body is
    cut off while it streams in (the route's read raises a 413 HTTPException: FastAPI passes
    those through its body parsing, and the error handlers give the same JSON). Routes with a
    tighter limit still apply theirs.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            message = f"body is {int(declared)} bytes; the limit is {self.limit}"
            await JSONResponse(error_body("payload_too_large", message), 413)(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise HTTPException(413, f"body exceeds the limit of {self.limit} bytes")
            return message

        await self.app(scope, limited, send)
