"""Single-frame try-on: POST /v1/tryon/render (composited JPEG) and /v1/tryon/analyze."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from service.access.deps import KioskDep
from service.deps import RuntimeDep
from service.errors import AUTH_ERRORS, ServiceError, error_responses
from service.runtime import Runtime
from service.tryon.frame_input import IMAGE_BODY, TryOnQuery, read_image, select
from vision.errors import VisionError
from vision.measure import FitAdvice, fit_advice, fit_verdict
from vision.tryon_result import TryOnResult

router = APIRouter(
    prefix="/v1/tryon",
    tags=["try-on"],
    responses=error_responses(400, 404, 413, 415, 422, 503, *AUTH_ERRORS),
)

# The render endpoint answers with a JPEG; what the frame showed travels in these headers.
RENDER_HEADERS = {
    "X-TryOn-Faces": {"description": "faces found", "schema": {"type": "integer"}},
    "X-TryOn-Applied": {"description": "overlay drawn", "schema": {"type": "boolean"}},
    "X-TryOn-Pose": {"description": "head pose (JSON)", "schema": {"type": "string"}},
    "X-TryOn-Measurements": {"description": "PD, face width (JSON)", "schema": {"type": "string"}},
    "X-TryOn-Fit": {"description": "fit advice (JSON)", "schema": {"type": "string"}},
    "X-TryOn-Timings": {"description": "per-stage ms (JSON)", "schema": {"type": "string"}},
}


class FitOut(BaseModel):
    """Only for a reliable measurement (vision.measure.fit_advice); none otherwise."""

    size_band: Literal["S", "M", "L"]
    size_band_mm: tuple[float, float] | None = Field(
        default=None, description="the size's own frame-width range; sizes never overlap"
    )
    recommended_frame_width_mm: tuple[float, float]
    reliable: bool
    frame_width_mm: float | None = None
    verdict: Literal["good fit", "too narrow", "too wide"] | None = None


class FrameSummaryOut(BaseModel):
    """What one processed frame showed (vision.tryon_result.TryOnResult.summary())."""

    frame_index: int
    faces: int
    pose: dict[str, Any] | None = None
    measurements: dict[str, Any] | None = None
    timings_ms: dict[str, float]
    fit: FitOut | None = None


class RenderJsonOut(FrameSummaryOut):
    applied: bool
    selection: dict[str, Any]
    content_type: Literal["image/jpeg"]
    image_base64: str


class FittingProduct(BaseModel):
    sku: str
    name: str
    style: str
    frame_width_mm: float
    size_band: str
    type: str


class AnalyzeOut(FrameSummaryOut):
    landmarks: list[list[float]] | None = Field(default=None, description="only with ?landmarks")
    bbox: list[float] | None = Field(default=None, description="only with ?landmarks")
    fitting_products: list[FittingProduct]


async def run_frame(
    rt: Runtime, data: bytes, q: TryOnQuery, *, encode: bool, sku_for_fit: str | None = None
) -> tuple[TryOnResult, FitAdvice | None]:
    """Process one frame on a worker; the fit is for the product drawn (or `sku_for_fit`)."""

    def work() -> tuple[TryOnResult, FitAdvice | None]:
        pipe = rt.image_pipelines.get()
        select(pipe, q)
        result = pipe.process_bytes(data, encode=encode)
        if sku_for_fit is None:
            return result, result.fit
        product = rt.catalog.get(sku_for_fit)  # a worker thread: may query uploaded products
        return result, fit_advice(result.measurements, float(product.frame_width_mm))

    try:
        result, fit = await rt.pool.run(work)
    except (VisionError, ServiceError) as exc:
        rt.metrics.errors.labels(getattr(exc, "code", "error")).inc()
        raise
    rt.metrics.observe(result.timings_ms, "render" if encode else "analyze")
    return result, fit


def _compact(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), default=float)


@router.post(
    "/render",
    response_model=RenderJsonOut,
    responses={
        200: {
            "content": {"image/jpeg": {}, "application/json": {}},
            "description": "composited JPEG (or JSON with ?format=json)",
            "headers": RENDER_HEADERS,
        }
    },
    summary="Composite glasses or a lipstick shade onto one frame",
    openapi_extra=IMAGE_BODY,
)
async def render(
    request: Request,
    rt: RuntimeDep,
    _: KioskDep,
    q: Annotated[TryOnQuery, Query()],
    format: Annotated[Literal["jpeg", "json"], Query()] = "jpeg",
) -> Response:
    data, q = await read_image(request, q, rt.settings.max_body_bytes)
    result, _fit = await run_frame(rt, data, q, encode=True)
    summary = result.summary()
    if format == "json":
        assert result.jpeg is not None
        return JSONResponse(
            {
                **summary,
                "content_type": "image/jpeg",
                "image_base64": base64.b64encode(result.jpeg).decode("ascii"),
            }
        )
    headers = {
        "X-TryOn-Faces": str(summary["faces"]),
        "X-TryOn-Applied": "true" if result.applied else "false",
        "X-TryOn-Pose": _compact(summary["pose"]),
        "X-TryOn-Measurements": _compact(summary["measurements"]),
        "X-TryOn-Fit": _compact(summary["fit"]),
        "X-TryOn-Timings": _compact(summary["timings_ms"]),
        "Cache-Control": "no-store",
    }
    return Response(result.jpeg, media_type="image/jpeg", headers=headers)


@router.post(
    "/analyze",
    response_model=AnalyzeOut,
    response_model_exclude_unset=True,
    summary="Pose, measurements and recommended size; no image back",
    openapi_extra=IMAGE_BODY,
)
async def analyze(
    request: Request,
    rt: RuntimeDep,
    _: KioskDep,
    q: Annotated[TryOnQuery, Query()],
    landmarks: bool = False,
) -> dict[str, Any]:
    data, q = await read_image(request, q, rt.settings.max_body_bytes)
    # Nothing is drawn here; a given sku only asks "does this frame fit?".
    result, fit = await run_frame(rt, data, TryOnQuery(), encode=False, sku_for_fit=q.sku)
    out = result.summary(include_landmarks=landmarks)
    out.pop("selection", None)
    out.pop("applied", None)
    out["fit"] = fit.to_dict() if fit is not None else None
    out["fitting_products"] = []
    if fit is not None:  # the catalog's frames the same fit rule calls a good fit
        band = fit.recommended_frame_width_mm
        products = await run_in_threadpool(rt.catalog.list_products)
        out["fitting_products"] = [
            {k: p[k] for k in ("sku", "name", "style", "frame_width_mm", "size_band", "type")}
            for p in products
            if fit_verdict(float(p["frame_width_mm"]), band) == "good fit"
        ]
    return out
