"""One error base class with a status code, turned into JSON by add_exception_handlers."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, JsonValue
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

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
    503: "Busy: too many requests waiting; retry",
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

    @app.exception_handler(ClientDisconnect)
    async def _gone(_: Request, exc: ClientDisconnect) -> JSONResponse:
        # The client hung up before its body was complete (a body read by hand: frames,
        # Segment): nobody is left to answer, and it is no server error to log as one.
        return JSONResponse(error_body("client_disconnected", "the body ended early"), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code)
