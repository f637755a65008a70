"""GET /v1/analytics/...: product, funnel, shade, NPS and fit-gap reports, and exports."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response
from pydantic import TypeAdapter
from sqlalchemy.orm import Session

from service.access.deps import AnalystDep
from service.analytics import queries, shaping
from service.analytics.definitions import (
    FIT_BIN_MM,
    FIT_TOLERANCE_MM,
    Filters,
    ProductType,
)
from service.analytics.engines import ReportSource
from service.analytics.exports import export
from service.analytics.fitgap import Frame, fit_gap
from service.analytics.schemas import (
    FitGapReport,
    FunnelReport,
    NpsReport,
    ProductReport,
    ShadeReport,
    report_responses,
)
from service.deps import RuntimeDep, SessionDep, SettingsDep
from service.errors import AUTH_ERRORS, Unprocessable, error_responses
from service.runtime import Runtime
from service.settings import Settings
from service.touchpoints.schemas import Channel

router = APIRouter(
    prefix="/v1/analytics", tags=["analytics"], responses=error_responses(422, *AUTH_ERRORS)
)
Format = Literal["json", "csv", "jsonl", "parquet"]
Dim = Literal["variant", "channel", "store", "day"]
_DIM = "(variant|channel|store|day)"
# Comma-separated dimensions, checked at the edge (a bad one is a 422 before any query runs).
GROUP_BY_PATTERN = rf"^\s*({_DIM}\s*(,\s*{_DIM}\s*)*)?$"
GroupBy = Annotated[
    str,
    Query(
        max_length=64,
        pattern=GROUP_BY_PATTERN,
        description="comma-separated: variant, channel, store, day",
    ),
]
# Store ids as events carry them: 1-64 characters, no control characters.
StoreId = Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]
LATEST_TIME = datetime(9999, 1, 1, tzinfo=UTC)
EARLIEST_TIME = datetime(2000, 1, 1, tzinfo=UTC)
Metrics = Annotated[
    Literal["all", "counts"],
    Query(description="counts: only exact sums (no unique shoppers/percentiles), from rollups"),
]


def get_filters(
    start: Annotated[datetime | None, Query(description="inclusive, ISO 8601")] = None,
    end: Annotated[datetime | None, Query(description="exclusive, ISO 8601")] = None,
    channel: Annotated[Channel | None, Query()] = None,
    store_id: StoreId | None = None,
    product_type: Annotated[
        ProductType | None,
        Query(description="glasses | lipstick: narrows products, funnel and shades"),
    ] = None,
) -> Filters:
    start = start.replace(tzinfo=UTC) if start and start.tzinfo is None else start
    end = end.replace(tzinfo=UTC) if end and end.tzinfo is None else end
    for name, t in (("start", start), ("end", end)):
        try:  # in UTC, with room for a conversion window after it
            ok = t is None or EARLIEST_TIME <= t.astimezone(UTC) < LATEST_TIME
        except OverflowError:
            ok = False
        if not ok:
            # No event is older than 2000 (ingest refuses them), and day arithmetic on the
            # first or last representable dates overflows.
            raise Unprocessable(f"{name} must be between 2000-01-01 and 9999-01-01 UTC")
    if start and end and end <= start:
        raise Unprocessable("end must be after start")
    return Filters(start, end, channel, store_id, product_type)


FiltersDep = Annotated[Filters, Depends(get_filters)]


_DIMS: TypeAdapter[list[Dim]] = TypeAdapter(list[Dim])


def _dims(group_by: str) -> list[Dim]:
    """The dimensions of a group_by that matched GROUP_BY_PATTERN."""
    return _DIMS.validate_python([d.strip() for d in group_by.split(",") if d.strip()])


def _respond(
    rows: list[dict[str, Any]], fmt: Format, name: str, f: Filters, **meta: Any
) -> Response:
    if fmt == "json":
        return JSONResponse({"report": name, "filters": _filters_json(f), **meta, "rows": rows})
    body, media = export(rows, fmt)
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'},
    )


def _filters_json(f: Filters) -> dict[str, Any]:
    return {
        "start": f.start.isoformat() if f.start else None,
        "end": f.end.isoformat() if f.end else None,
        "channel": f.channel,
        "store_id": f.store_id,
        "product_type": f.product_type,
    }


def _run(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except ValueError as exc:  # bad group_by and the like
        raise Unprocessable(str(exc)) from None


def _window(settings: Settings, window_hours: float | None) -> float:
    return window_hours or settings.conversion_window_hours


def _source(rt: Runtime, session: Session, metrics: str = "all") -> ReportSource:
    """The report's engine: the setting's (DuckDB over the lake by default); the
    rollup-backed metrics=counts always reads the SQL store."""
    return rt.analytics.source(session, "sql" if metrics == "counts" else None)


def _meta(src: ReportSource) -> dict[str, Any]:
    """Which engine answered, and as of when its data is complete."""
    return {"engine": src.engine, "as_of": src.as_of.isoformat()}


@router.get("/products", responses=report_responses(ProductReport))
def products(
    rt: RuntimeDep,
    session: SessionDep,
    _: AnalystDep,
    f: FiltersDep,
    group_by: GroupBy = "variant",
    format: Format = "json",
    metrics: Metrics = "all",
) -> Response:
    """Per product (and variant/channel/store/day): try-ons, unique shoppers, dwell median/p90."""
    src = _source(rt, session, metrics)
    if metrics == "counts":
        rows = _run(queries.product_summary, session, f, _dims(group_by), metrics)
    else:
        rows = _run(src.product_summary, f, _dims(group_by))
    return _respond(rows, format, "products", f, **_meta(src))


@router.get("/funnel", responses=report_responses(FunnelReport))
def funnel(
    rt: RuntimeDep,
    settings: SettingsDep,
    session: SessionDep,
    _: AnalystDep,
    f: FiltersDep,
    group_by: GroupBy = "",
    format: Format = "json",
    window_hours: Annotated[float | None, Query(gt=0, le=24 * 90)] = None,
) -> Response:
    """Try-on -> cart -> order (and its revenue) per product within the conversion window
    after the first try-on."""
    w = _window(settings, window_hours)
    src = _source(rt, session)
    rows = _run(src.funnel, f, w, _dims(group_by))
    totals = shaping.funnel_totals(rows)
    return _respond(rows, format, "funnel", f, window_hours=w, totals=totals, **_meta(src))


@router.get("/shades", responses=report_responses(ShadeReport))
def shades(
    rt: RuntimeDep,
    session: SessionDep,
    _: AnalystDep,
    f: FiltersDep,
    by_skin_tone: bool = False,
    format: Format = "json",
    metrics: Metrics = "all",
) -> Response:
    """Shade popularity, optionally per skin-tone band."""
    src = _source(rt, session, metrics)
    if metrics == "counts":
        rows = _run(queries.shade_popularity, session, f, by_skin_tone, metrics)
    else:
        rows = _run(src.shade_popularity, f, by_skin_tone)
    return _respond(rows, format, "shades", f, **_meta(src))


@router.get("/nps", responses=report_responses(NpsReport))
def nps(
    rt: RuntimeDep, session: SessionDep, _: AnalystDep, f: FiltersDep, format: Format = "json"
) -> Response:
    """NPS by channel (promoters 9-10, detractors 0-6) plus an "all" row."""
    src = _source(rt, session)
    return _respond(src.nps(f), format, "nps", f, **_meta(src))


def _fit_gap_report(
    rt: Runtime, session: Session, f: Filters, tolerance_mm: float, bin_mm: float
) -> dict[str, Any]:
    frames = [
        Frame(p["sku"], float(p["frame_width_mm"]))
        for p in rt.catalog.list_products()
        if p.get("frame_width_mm")
    ]
    src = _source(rt, session)
    report = fit_gap(
        src.consented_face_widths(f),
        frames,
        tolerance_mm=tolerance_mm,
        bin_mm=bin_mm,
        min_shoppers=rt.settings.fit_gap_min_shoppers,
    )
    return {**_meta(src), **report}


@router.get("/fit-gap", responses=report_responses(FitGapReport))
def fit_gap_report(
    rt: RuntimeDep,
    session: SessionDep,
    _: AnalystDep,
    f: FiltersDep,
    tolerance_mm: Annotated[float, Query(gt=0, le=30)] = FIT_TOLERANCE_MM,
    bin_mm: Annotated[float, Query(ge=0.5, le=20)] = FIT_BIN_MM,
    format: Format = "json",
) -> Response:
    """Consented face widths vs catalog frame widths: which widths no frame fits (design next)."""
    report = _fit_gap_report(rt, session, f, tolerance_mm, bin_mm)
    if format == "json":
        return JSONResponse({"report": "fit-gap", "filters": _filters_json(f), **report})
    return _respond(report["bins"], format, "fit-gap", f)
