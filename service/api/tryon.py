"""Single-frame try-on: POST /v1/tryon/render (composited JPEG) and /v1/tryon/analyze."""

from __future__ import annotations

import base64
import json
import threading
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError

from service.auth import KioskDep
from service.errors import PayloadTooLarge, ServiceError, UnsupportedMediaType
from vision.errors import VisionError
from vision.frames import FrameLimits
from vision.landmarks import RunningMode
from vision.pipeline import PipelineOptions, Selection, TryOnPipeline, TryOnResult

router = APIRouter(prefix="/v1/tryon", tags=["try-on"])

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


def pipeline_options(settings: Any, mode: RunningMode) -> PipelineOptions:
    from vision.smoothing import SmoothingOptions

    return PipelineOptions(
        running_mode=mode,
        max_faces=settings.max_faces,
        fov_y_deg=settings.camera_fov_deg,
        smoothing=SmoothingOptions(
            min_cutoff=settings.smoothing_min_cutoff,
            beta=settings.smoothing_beta,
            d_cutoff=settings.smoothing_d_cutoff,
        ),
        limits=FrameLimits(max_pixels=settings.max_frame_pixels),
        jpeg_quality=settings.jpeg_quality,
    )


class ImagePipelines:
    """One IMAGE-mode pipeline per worker thread, reused across requests (a tracker is
    expensive to build; its GL renderer is per thread anyway)."""

    def __init__(self, app: Any) -> None:
        self._app = app
        self._local = threading.local()

    def get(self) -> TryOnPipeline:
        pipe = getattr(self._local, "pipeline", None)
        if pipe is None:
            st = self._app.state
            pipe = TryOnPipeline(
                pipeline_options(st.settings, RunningMode.IMAGE),
                st.catalog,
                st.catalog.shades,
                renderers=st.renderers,
            )
            self._local.pipeline = pipe
        return pipe


def select(pipe: TryOnPipeline, q: TryOnQuery) -> None:
    pipe.clear()
    if q.sku and q.shade:
        raise ServiceError("choose either a glasses sku or a lipstick shade, not both")
    if q.sku:
        pipe.select_glasses(q.sku, q.variant)
    elif q.shade:
        pipe.select_shade(q.shade, q.intensity, q.finish)


async def read_limited_body(request: Request, limit: int) -> bytes:
    """The request body, refusing it (413) from Content-Length or while streaming it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:  # chunked or lying Content-Length: stop reading at the limit
            raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_image(request: Request, q: TryOnQuery) -> tuple[bytes, TryOnQuery]:
    """Image bytes from a raw image body or a multipart 'image' part (form fields may carry
    the selection too)."""
    settings = request.app.state.settings
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
    body = await read_limited_body(request, settings.max_body_bytes)
    if ctype in IMAGE_TYPES:
        if not body:
            raise ServiceError("request body is empty; send the image bytes")
        return body, q
    request._body = body  # Starlette parses the form from the cached body
    form = await request.form(max_files=1, max_fields=16, max_part_size=settings.max_body_bytes)
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


async def run_frame(request: Request, data: bytes, q: TryOnQuery, *, encode: bool) -> TryOnResult:
    st = request.app.state

    def work() -> TryOnResult:
        pipe = st.image_pipelines.get()
        select(pipe, q)
        return pipe.process_bytes(data, encode=encode)

    try:
        result = await st.pool.run(work)
    except (VisionError, ServiceError) as exc:
        st.metrics.errors.labels(getattr(exc, "code", "error")).inc()
        raise
    st.metrics.observe(result.timings_ms, "render" if encode else "analyze")
    return result


def fit_advice(catalog: Any, result: TryOnResult) -> dict[str, Any] | None:
    """Fit advice for the product the frame was actually processed with (not the current one)."""
    product = None
    if result.selection.kind == "glasses" and result.selection.sku:
        product = catalog.get(result.selection.sku)
    return fit_for(result, product)


def fit_for(result: TryOnResult, product: Any) -> dict[str, Any] | None:
    """Size band and whether the selected frame's width suits the measured face."""
    m = result.measurements
    if m is None:
        return None
    lo, hi = m.recommended_frame_width_mm
    advice: dict[str, Any] = {
        "size_band": m.size_band,
        "recommended_frame_width_mm": [round(lo, 1), round(hi, 1)],
        "reliable": m.reliable,
    }
    if result.selection.kind == "glasses" and product is not None:
        width = float(product.frame_width_mm)
        advice["frame_width_mm"] = width
        advice["verdict"] = "too narrow" if width < lo else "too wide" if width > hi else "good fit"
    return advice


def _compact(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), default=float)


@router.post(
    "/render",
    responses={200: {"content": {"image/jpeg": {}}, "description": "composited JPEG"}},
    summary="Composite glasses or a lipstick shade onto one frame",
    openapi_extra=IMAGE_BODY,
)
async def render(
    request: Request,
    _: KioskDep,
    q: Annotated[TryOnQuery, Query()],
    format: Annotated[Literal["jpeg", "json"], Query()] = "jpeg",
) -> Response:
    data, q = await read_image(request, q)
    result = await run_frame(request, data, q, encode=True)
    summary = result.summary()
    fit = fit_advice(request.app.state.catalog, result)
    if format == "json":
        assert result.jpeg is not None
        return JSONResponse(
            {
                **summary,
                "fit": fit,
                "content_type": "image/jpeg",
                "image_base64": base64.b64encode(result.jpeg).decode("ascii"),
            }
        )
    headers = {
        "X-TryOn-Faces": str(summary["faces"]),
        "X-TryOn-Applied": "true" if result.applied else "false",
        "X-TryOn-Pose": _compact(summary["pose"]),
        "X-TryOn-Measurements": _compact(summary["measurements"]),
        "X-TryOn-Fit": _compact(fit),
        "X-TryOn-Timings": _compact(summary["timings_ms"]),
        "Cache-Control": "no-store",
    }
    return Response(result.jpeg, media_type="image/jpeg", headers=headers)


@router.post(
    "/analyze",
    summary="Pose, measurements and recommended size; no image back",
    openapi_extra=IMAGE_BODY,
)
async def analyze(
    request: Request,
    _: KioskDep,
    q: Annotated[TryOnQuery, Query()],
    landmarks: bool = False,
) -> dict[str, Any]:
    data, q = await read_image(request, q)
    # Nothing is drawn here; a given sku only asks "does this frame fit?".
    product = await run_in_threadpool(request.app.state.catalog.get, q.sku) if q.sku else None
    result = await run_frame(request, data, TryOnQuery(), encode=False)
    out = result.summary(include_landmarks=landmarks)
    out.pop("selection", None)
    out.pop("applied", None)
    if product is not None:
        result.selection = Selection(kind="glasses", sku=product.sku)
    out["fit"] = fit = fit_for(result, product)
    out["fitting_products"] = []
    if fit is not None:  # the catalog's frames inside the recommended width band
        lo, hi = fit["recommended_frame_width_mm"]
        products = await run_in_threadpool(request.app.state.catalog.list_products)
        out["fitting_products"] = [
            {k: p[k] for k in ("sku", "name", "style", "frame_width_mm", "size_band", "type")}
            for p in products
            if lo <= p["frame_width_mm"] <= hi
        ]
    return out
