"""Response models of the analytics reports (their JSON form; csv/jsonl/parquet hold the rows)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class FiltersOut(BaseModel):
    start: str | None = Field(description="ISO 8601, inclusive")
    end: str | None = Field(description="ISO 8601, exclusive")
    channel: str | None
    store_id: str | None
    product_type: str | None = Field(default=None, description="glasses | lipstick")


class GroupedRow(BaseModel):
    """One report row; it also carries one key per group_by dimension (variant, channel,
    store_id, day)."""

    model_config = ConfigDict(extra="allow")

    variant: str | None = None
    channel: str | None = None
    store_id: str | None = None
    day: str | None = Field(default=None, description="UTC day, YYYY-MM-DD")


class ProductRow(GroupedRow):
    sku: str
    try_ons: int
    unique_shoppers: int | None = Field(default=None, description='metrics="all" only')
    dwell_events: int
    dwell_median_ms: float | None = Field(default=None, description='metrics="all" only')
    dwell_p90_ms: float | None = Field(default=None, description='metrics="all" only')
    dwell_mean_ms: float | None = Field(default=None, description='metrics="counts" only')


class FunnelRow(GroupedRow):
    sku: str | None = None
    tried: int
    carted: int
    ordered: int
    cart_rate: float
    order_rate: float
    cart_to_order_rate: float | None
    window_hours: float
    revenue: float = Field(
        description="price x quantity of the order lines of this sku that count for `ordered`"
        " (the same shopper and window); a line without a price counts 0"
    )
    currency: str | None = Field(
        description="the currency of those orders when they all name one; null when there are"
        " none, they are mixed, or one names none"
    )


class FunnelTotals(BaseModel):
    revenue: float = Field(description="the sum of the rows' revenue")
    currency: str | None = Field(
        description="the one currency of every row with an order; null when mixed or none"
    )


class ShadeRow(BaseModel):
    shade: str
    skin_tone_band: str | None = Field(default=None, description="with by_skin_tone only")
    applications: int
    unique_shoppers: int | None = Field(default=None, description='metrics="all" only')
    share: float = Field(description="of the applications in the same skin-tone band")


class NpsRow(BaseModel):
    channel: str = Field(description='a channel, or "all"')
    responses: int
    promoters: int
    passives: int
    detractors: int
    nps: float


class Report(BaseModel):
    report: str
    filters: FiltersOut


class ProductReport(Report):
    report: Literal["products"]
    rows: list[ProductRow]


class FunnelReport(Report):
    report: Literal["funnel"]
    window_hours: float
    totals: FunnelTotals
    rows: list[FunnelRow]


class ShadeReport(Report):
    report: Literal["shades"]
    rows: list[ShadeRow]


class NpsReport(Report):
    report: Literal["nps"]
    rows: list[NpsRow]


class FitFrame(BaseModel):
    sku: str
    frame_width_mm: float
    suits_face_width_mm: float = Field(description="the face width this frame is ideal for")


class FitBin(BaseModel):
    lo_mm: float
    hi_mm: float
    shoppers: int
    shoppers_without_fit: int
    fitting_frames: int
    fitting_skus: list[str]
    gap: bool


class FitGapRange(BaseModel):
    from_mm: float
    to_mm: float
    shoppers: int = Field(description="the sample size: measured shoppers in this gap")
    face_width_median_mm: float
    recommended: bool = Field(description="shoppers >= min_shoppers")
    suggested_frame_width_mm: float | None = Field(
        description="0.9 x the median face width; null when not recommended"
    )
    suggested_frame_width_ci95_mm: list[float] | None = Field(
        description="~95% confidence interval of the suggestion (the median's order statistics)"
    )
    reason: str | None = None


class FitGapReport(Report):
    report: Literal["fit-gap"]
    tolerance_mm: float
    bin_mm: float
    shoppers: int
    frames: list[FitFrame]
    fit_definition: str
    bins: list[FitBin] = Field(description="csv/jsonl/parquet exports hold these rows")
    gaps: list[FitGapRange]
    min_shoppers: int = Field(description="a gap needs this many shoppers to be recommended")
    recommendations: int
    shoppers_without_fit: int
    share_without_fit: float | None
    share_without_fit_ci95: list[float] | None = Field(description="Wilson score interval")


# The non-JSON forms of every report (?format=csv|jsonl|parquet): the rows as a download.
EXPORT_CONTENT: dict[str, dict[str, Any]] = {
    "text/csv": {},
    "application/x-ndjson": {},
    "application/vnd.apache.parquet": {},
}


def report_responses(model: type[Report]) -> dict[int | str, dict[str, Any]]:
    """`responses=` of a report route: `model` as JSON, or the rows in an export format."""
    return {
        200: {
            "model": model,
            "description": "The report (JSON), or its rows as csv/jsonl/parquet (?format=)",
            "content": EXPORT_CONTENT,
        }
    }
