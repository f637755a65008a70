"""One error base class with a status code, turned into JSON by add_exception_handlers."""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, JsonValue
from sqlalchemy.exc import DataError, DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.websockets import WebSocket

from vision.errors import (
    CatalogError,
    FrameError,
    FrameTooLargeError,
    LandmarkError,
    MeasureError,
    OptionsError,
    PoseError,
    RenderError,
    RunningModeError,
    SelectionError,
    UnsupportedFormatError,
    VisionError,
)

log = logging.getLogger(__name__)


class ServiceError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class NotFound(ServiceError):
    status_code = 404
    code = "not_found"


class Unauthorized(ServiceError):
    status_code = 401
    code = "unauthorized"


class Forbidden(ServiceError):
    status_code = 403
    code = "forbidden"


class Conflict(ServiceError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(ServiceError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(ServiceError):
    status_code = 415
    code = "unsupported_media_type"


class Unprocessable(ServiceError):
    status_code = 422
    code = "unprocessable"


class RateLimited(ServiceError):
    status_code = 429
    code = "rate_limited"


class Unavailable(ServiceError):
    status_code = 503
    code = "unavailable"


# HTTP status of each vision error, most specific class first (vision knows nothing of HTTP).
VISION_STATUS: tuple[tuple[type[VisionError], int], ...] = (
    (UnsupportedFormatError, 415),
    (FrameTooLargeError, 413),
    (FrameError, 422),
    (CatalogError, 404),
    (OptionsError, 422),
    (LandmarkError, 422),
    (PoseError, 422),
    (MeasureError, 422),
    (SelectionError, 400),
    (RunningModeError, 400),
    # Only a service bug (a renderer used from the wrong thread) raises it: a server error.
    (RenderError, 500),
)


def vision_status(exc: VisionError) -> int:
    return next((status for cls, status in VISION_STATUS if isinstance(exc, cls)), 400)


# Codes for errors raised as plain HTTP exceptions (by the framework or the body limit).
HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


class ErrorInfo(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. validation_error.")
    message: str
    detail: JsonValue | None = Field(
        default=None, description="Only when there is more to say (e.g. validation errors)."
    )


class ErrorBody(BaseModel):
    """The body of every error response (documented in OpenAPI in place of FastAPI's 422)."""

    error: ErrorInfo


# What each 4xx/5xx means in the OpenAPI document; the body is always ErrorBody.
ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Bad request",
    401: "Missing or unknown API key",
    403: "The key lacks the scope this route needs",
    404: "Not found",
    409: "Conflict",
    410: "Gone (expired)",
    413: "Body too large",
    415: "Unsupported media type",
    422: "Validation error",
    429: "Rate limit exceeded (see Retry-After)",
    503: "Busy (too many requests waiting) or the database is unreachable; retry after"
    " Retry-After seconds",
}
# Raised by require_scope (service.access.deps) on every protected route.
AUTH_ERRORS = (401, 403, 429)


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for routes/routers: these statuses answer with ErrorBody."""
    return {
        c: {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[c]} for c in sorted(set(codes))
    }


def error_body(code: str, message: str, detail: Any = None) -> dict[str, Any]:
    """The one JSON shape of every error: {"error": {"code", "message", "detail"?}}."""
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if detail is not None:
        body["error"]["detail"] = detail
    return body


# -- the database is unreachable: 503 + Retry-After, whatever the route ------------------------
# How long a client should wait before retrying while the database does not answer.
DB_RETRY_AFTER_S = 5
DB_UNAVAILABLE = "database_unavailable"
# SQLite errors that mean "not now" (a missing/unwritable file, a lock held beyond the busy
# timeout, an I/O error), unlike "no such table" and the like, which are bugs.
_SQLITE_UNAVAILABLE = ("unable to open", "database is locked", "disk i/o error")

try:  # PostgreSQL's driver is optional (a SQLite-only install)
    import psycopg

    _PG_UNAVAILABLE: tuple[type[BaseException], ...] = (
        psycopg.OperationalError,
        psycopg.InterfaceError,
    )
except ImportError:  # pragma: no cover
    _PG_UNAVAILABLE = ()


def database_unavailable(exc: BaseException) -> bool:
    """True when exc (or what caused it) says the database cannot be reached right now.

    SQLAlchemy's invalidated connections and pool timeouts; psycopg's OperationalError and
    InterfaceError (refused, reset, shutting down, starting up, closed connection); SQLite's
    "unable to open", "database is locked" (beyond the busy timeout) and I/O errors.
    """
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, DBAPIError):
            if e.connection_invalidated:
                return True
            stack.append(e.orig)
        if isinstance(e, PoolTimeout) or (_PG_UNAVAILABLE and isinstance(e, _PG_UNAVAILABLE)):
            return True
        if isinstance(e, sqlite3.OperationalError) and any(
            m in str(e).lower() for m in _SQLITE_UNAVAILABLE
        ):
            return True
        stack.extend((e.__cause__, e.__context__))
    return False


def unavailable_body(**extra: Any) -> dict[str, Any]:
    """The 503 body (`extra` adds keys beside `error`, e.g. Segment's success/code/message)."""
    message = f"the database is unavailable; retry in {DB_RETRY_AFTER_S} s"
    return {
        **extra,
        **error_body(DB_UNAVAILABLE, message, {"retry_after_s": DB_RETRY_AFTER_S}),
    }


def unavailable_response(**extra: Any) -> JSONResponse:
    return JSONResponse(
        unavailable_body(**extra),
        status_code=503,
        headers={"Retry-After": str(DB_RETRY_AFTER_S)},
    )


async def _close_websocket(ws: WebSocket, exc: BaseException) -> None:
    """A WebSocket route raised: tell the client why, then close (1013: try again later)."""
    code, reason = (1013, DB_UNAVAILABLE) if database_unavailable(exc) else (1011, "internal")
    try:
        text = reason.replace("_", " ")
        message: dict[str, Any] = {"type": "error", "code": reason, "message": text}
        if reason == DB_UNAVAILABLE:
            message["retry_after_s"] = DB_RETRY_AFTER_S
        await ws.send_text(json.dumps(message))
        await ws.close(code, reason)
    except Exception:  # not accepted yet, or the client is gone: nothing more to say
        log.debug("websocket could not be told of %s", type(exc).__name__)


def add_exception_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service(_: Request, exc: ServiceError) -> JSONResponse:
        headers = {"Retry-After": "60"} if isinstance(exc, RateLimited) else None
        return JSONResponse(
            error_body(exc.code, exc.message, exc.detail),
            status_code=exc.status_code,
            headers=headers,
        )

    @app.exception_handler(VisionError)
    async def _vision(_: Request, exc: VisionError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, str(exc)), status_code=vision_status(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
            for e in exc.errors()
        ]
        return JSONResponse(error_body("validation_error", "request is invalid", errors), 422)

    @app.exception_handler(DataError)
    async def _data(_: Request, exc: DataError) -> JSONResponse:
        # The database refused a value the request carried (PostgreSQL: a NUL character in
        # text, a string longer than its column, a number out of range): bad input, not a 500.
        log.warning("database rejected a request value: %s", exc.orig)
        reason = str(exc.orig).splitlines()[0] if exc.orig is not None else "invalid value"
        return JSONResponse(error_body("invalid_value", f"a value cannot be stored: {reason}"), 422)

    async def _database(conn: Request, exc: Exception) -> JSONResponse | None:
        # One handler for every database failure a route lets escape (a request's session,
        # authentication and rate limiting in a thread, an ingest): an outage is a 503 the
        # client retries, never a plain-text 500; anything else a JSON 500.
        if isinstance(conn, WebSocket):
            log.warning("websocket ended by a database error: %s", exc)
            await _close_websocket(conn, exc)
            return None
        if database_unavailable(exc):
            log.warning("database unavailable (%s): answered 503", type(exc).__name__)
            return unavailable_response()
        log.error("database error", exc_info=exc)
        return JSONResponse(error_body("internal_error", "internal server error"), 500)

    for cls in (SQLAlchemyError, *_PG_UNAVAILABLE, sqlite3.Error):
        app.add_exception_handler(cls, _database)  # type: ignore[arg-type]

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # Last resort (Starlette still logs the traceback): JSON, and a 503 when the cause
        # down the chain is an unreachable database (an error wrapped by another).
        if database_unavailable(exc):
            return unavailable_response()
        return JSONResponse(error_body("internal_error", "internal server error"), 500)

    @app.exception_handler(ClientDisconnect)
    async def _gone(_: Request, exc: ClientDisconnect) -> JSONResponse:
        # The client hung up before its body was complete (a body read by hand: frames,
        # Segment): nobody is left to answer, and it is no server error to log as one.
        return JSONResponse(error_body("client_disconnected", "the body ended early"), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code)
