"""A try-on request's input: the image (raw or multipart) and what to try on."""

from __future__ import annotations

from typing import Literal

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError

from service.body_limit import read_limited_body
from service.errors import ServiceError, UnsupportedMediaType
from vision.pipeline import TryOnPipeline

IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
# The body is read by hand (size limits while streaming), so describe it for /docs here.
IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            **{t: {"schema": {"type": "string", "format": "binary"}} for t in IMAGE_TYPES},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {
                        "image": {"type": "string", "format": "binary"},
                        "sku": {"type": "string"},
                        "variant": {"type": "string"},
                        "shade": {"type": "string"},
                        "finish": {"type": "string"},
                        "intensity": {"type": "number"},
                    },
                }
            },
        },
    }
}


class TryOnQuery(BaseModel):
    """What to try on: a glasses sku (+variant) or a lipstick shade (+finish, intensity)."""

    sku: str | None = Field(default=None, max_length=64)
    variant: str | None = Field(default=None, max_length=64)
    shade: str | None = Field(default=None, max_length=64)
    finish: Literal["matte", "satin", "gloss", "shimmer"] | None = None
    intensity: float = Field(default=1.0, ge=0.0, le=1.0)


def select(pipe: TryOnPipeline, q: TryOnQuery) -> None:
    pipe.clear()
    if q.sku and q.shade:
        raise ServiceError("choose either a glasses sku or a lipstick shade, not both")
    if q.sku:
        pipe.select_glasses(q.sku, q.variant)
    elif q.shade:
        pipe.select_shade(q.shade, q.intensity, q.finish)


async def read_image(
    request: Request, q: TryOnQuery, max_bytes: int
) -> tuple[bytes, TryOnQuery]:
    """Image bytes from a raw image body or a multipart 'image' part (form fields may carry
    the selection too)."""
    ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if not ctype:
        raise UnsupportedMediaType(
            "missing Content-Type: send image/jpeg, image/png, image/webp or multipart/form-data"
        )
    if ctype not in (*IMAGE_TYPES, "multipart/form-data"):
        raise UnsupportedMediaType(
            f"unsupported Content-Type {ctype!r}: send image/jpeg, image/png, image/webp or "
            "multipart/form-data with an 'image' part"
        )
    body = await read_limited_body(request, max_bytes)
    if ctype in IMAGE_TYPES:
        if not body:
            raise ServiceError("request body is empty; send the image bytes")
        return body, q
    request._body = body  # Starlette parses the form from the cached body
    form = await request.form(max_files=1, max_fields=16, max_part_size=max_bytes)
    part = form.get("image")
    if part is None or isinstance(part, str):
        raise ServiceError("multipart body needs a file part named 'image'")
    fields = {k: v for k, v in form.items() if k != "image" and isinstance(v, str) and v}
    if fields:
        try:
            q = TryOnQuery.model_validate({**q.model_dump(exclude_unset=True), **fields})
        except ValidationError as exc:  # bad form fields are bad input like a bad query: 422
            raise RequestValidationError(
                [{**e, "loc": ("form", *e["loc"])} for e in exc.errors(include_input=False)]
            ) from None
    return await part.read(), q


