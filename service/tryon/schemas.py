"""Response models of the catalog routes: products (glasses), lipstick shades, listings."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class VariantOut(BaseModel):
    name: str
    frame_color: str = Field(description="#rrggbb")
    lens_tint: list[float] = Field(description="rgba 0..1; alpha is the lens opacity")


class GlassesOut(BaseModel):
    """A glasses product (bundled or uploaded); uploaded metadata may carry more keys."""

    # Open: uploaded products keep whatever validated metadata they were stored with.
    model_config = ConfigDict(extra="allow")

    sku: str
    type: Literal["glasses"]
    name: str
    style: str | None = None
    material: str | None = None
    variants: list[VariantOut] | None = None
    price: float | None = None
    currency: str | None = None
    lens_width_mm: float | None = None
    bridge_mm: float | None = None
    temple_mm: float | None = None
    size: str | None = Field(default=None, description="lens-bridge-temple, e.g. 52-18-140")
    frame_width_mm: float | None = None
    size_band: str | None = None
    credit: str | None = None
    license: str | None = None
    source: Literal["bundled", "uploaded"] | None = None
    model_url: str | None = Field(default=None, description="GET it for the binary glTF")
    glb_sha256: str | None = Field(default=None, description="only in the upload's answer")


class ShadeOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    sku: str = Field(description="The shade's sku: its id (one key across product types; "
                     "carts and orders name it).")
    type: Literal["lipstick"]
    id: str
    name: str
    hex: str = Field(description="#RRGGBB")
    finish: str
    monk: list[int] = Field(description="Monk skin tones (1-10) the shade suits")
    price: float | None = Field(default=None, description="unit price in `currency`")
    currency: str | None = None


ProductOut = Annotated[GlassesOut | ShadeOut, Field(discriminator="type")]


class ProductListOut(BaseModel):
    items: list[ProductOut]
    count: int


class ShadeListOut(BaseModel):
    items: list[ShadeOut]
    count: int
