"""Catalog routes: list/get products, GLB models, shades, admin upload of a validated GLB."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import UploadFile

from service.access.deps import AdminDep, KioskDep
from service.body_limit import read_limited_body
from service.deps import RuntimeDep, SessionDep
from service.errors import (
    AUTH_ERRORS,
    NotFound,
    PayloadTooLarge,
    ServiceError,
    UnsupportedMediaType,
    error_responses,
)
from service.tryon.catalog import glb_limits, meta_for_product, shade_dict
from service.tryon.schemas import GlassesOut, ProductListOut, ShadeListOut
from vision.errors import CatalogError
from vision.measure import frame_fits

router = APIRouter(prefix="/v1", tags=["catalog"], responses=error_responses(422, *AUTH_ERRORS))
SkuPath = Annotated[str, Path(min_length=1)]


@router.get(
    "/products",
    response_model=ProductListOut,
    response_model_exclude_unset=True,
    summary="List products (glasses and lipstick shades)",
)
async def list_products(
    rt: RuntimeDep,
    _: KioskDep,
    type: Literal["glasses", "lipstick"] | None = None,
    style: str | None = None,
    face_width_mm: Annotated[float | None, Query(gt=80, lt=250)] = None,
) -> dict[str, Any]:
    catalog = rt.catalog
    items: list[dict[str, Any]] = []
    if type in (None, "glasses"):
        items += await run_in_threadpool(catalog.list_products)
    if type in (None, "lipstick") and face_width_mm is None:
        items += [shade_dict(s) for s in catalog.shade_list()]
    if style:
        items = [p for p in items if str(p.get("style", "")).lower() == style.lower()]
    if face_width_mm is not None:
        items = [
            p
            for p in items
            if p.get("type") == "glasses" and frame_fits(p["frame_width_mm"], face_width_mm)
        ]
    return {"items": items, "count": len(items)}


@router.get(
    "/shades",
    response_model=ShadeListOut,
    response_model_exclude_unset=True,
    summary="List lipstick shades",
)
async def list_shades(rt: RuntimeDep, _: KioskDep) -> dict[str, Any]:
    items = [shade_dict(s) for s in rt.catalog.shade_list()]
    return {"items": items, "count": len(items)}


@router.get(
    "/products/{sku}",
    response_model=GlassesOut,
    response_model_exclude_unset=True,
    responses=error_responses(404),
    summary="One product",
)
async def get_product(rt: RuntimeDep, _: KioskDep, sku: SkuPath) -> dict[str, Any]:
    try:
        return await run_in_threadpool(rt.catalog.product, sku)
    except CatalogError as exc:
        raise NotFound(str(exc)) from exc


@router.get(
    "/products/{sku}/model.glb",
    responses={200: {"content": {"model/gltf-binary": {}}}, **error_responses(404)},
    summary="The product's 3D model (binary glTF, millimetres)",
)
async def get_model(rt: RuntimeDep, _: KioskDep, sku: SkuPath) -> Response:
    try:
        data = await run_in_threadpool(rt.catalog.glb_bytes, sku)
    except CatalogError as exc:
        raise NotFound(str(exc)) from exc
    return Response(
        data, media_type="model/gltf-binary", headers={"Cache-Control": "public, max-age=300"}
    )


class Variant(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    frame_color: str = Field(pattern=r"^#[0-9a-fA-F]{6}$")
    lens_tint: list[float] = Field(default=[0.0, 0.0, 0.0, 0.0], min_length=4, max_length=4)


class ProductIn(BaseModel):
    """Metadata sent with the GLB (the `metadata` form field, JSON)."""

    sku: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    name: str = Field(min_length=1, max_length=128)
    style: str = Field(min_length=1, max_length=32)
    variants: list[Variant] = Field(min_length=1, max_length=32)
    price: float = Field(ge=0)
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    lens_width_mm: float = Field(gt=30, lt=75)
    bridge_mm: float = Field(gt=10, lt=30)
    temple_mm: float = Field(gt=100, lt=170)
    frame_width_mm: float = Field(gt=100, lt=180)
    license: str | None = Field(default=None, max_length=200)
    credit: str | None = Field(default=None, max_length=200)


@router.post(
    "/products",
    status_code=201,
    response_model=GlassesOut,
    response_model_exclude_unset=True,
    responses=error_responses(400, 409, 413, 415),
    summary="Upload a glasses product (admin)",
)
async def create_product(
    request: Request,
    rt: RuntimeDep,
    _: AdminDep,
    session: SessionDep,
) -> dict[str, Any]:
    settings = rt.settings
    ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if ctype != "multipart/form-data":
        raise UnsupportedMediaType(
            "send multipart/form-data with a 'model' GLB file part and a 'metadata' JSON field"
        )
    request._body = await read_limited_body(request, settings.max_glb_bytes + 64 * 1024)
    form = await request.form(
        max_files=1, max_fields=8, max_part_size=settings.max_glb_bytes + 1024
    )
    model, raw_meta = form.get("model"), form.get("metadata")
    if not isinstance(model, UploadFile) or not isinstance(raw_meta, str):
        raise ServiceError("need a 'model' file part (GLB) and a 'metadata' JSON field")
    try:
        meta = ProductIn.model_validate(json.loads(raw_meta))
    except (ValueError, RecursionError, ValidationError) as exc:
        # Without the input: it may be NaN, which a JSON error body cannot carry.
        detail = exc.errors(include_input=False) if isinstance(exc, ValidationError) else None
        raise ServiceError(
            f"metadata is invalid: {str(exc).splitlines()[0]}",
            detail=json.loads(json.dumps(detail, default=str)) if detail else None,
        ) from exc
    glb = await model.read()
    if len(glb) > settings.max_glb_bytes:
        raise PayloadTooLarge(
            f"model is {len(glb)} bytes; the limit is {settings.max_glb_bytes} bytes"
        )
    try:
        return await run_in_threadpool(
            rt.catalog.add,
            session,
            meta_for_product(meta.model_dump()),
            glb,
            glb_limits(settings),
        )
    except CatalogError as exc:
        # A GLB that fails validation is a bad request, not a missing resource.
        raise ServiceError(f"model rejected: {exc}") from exc
