"""The served catalog: bundled GLB products + products uploaded to the database, and shades."""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.db.base import utcnow
from service.errors import Conflict
from service.settings import Settings
from service.tryon.models import CatalogProduct
from vision.catalog import (
    GlassesCatalog,
    GlassesProduct,
    GlbLimits,
    product_from_scene,
    size_band_for_width,
    validate_glb,
)
from vision.errors import CatalogError
from vision.lipstick.shades import Shade, ShadeCatalog, load_shades

log = logging.getLogger(__name__)


def _load_shades() -> ShadeCatalog:
    try:
        return load_shades()
    except (CatalogError, OSError) as exc:
        # Keep serving glasses; an empty catalog answers "unknown shade" for every id.
        log.error("shade catalog unavailable: %s", exc)
        return ShadeCatalog(())


def _load_bundled(assets_dir: Path) -> GlassesCatalog:
    try:
        return GlassesCatalog.load(assets_dir)
    except CatalogError as exc:
        # Keep serving (uploaded products, lipstick, analysis) and say why in the log.
        log.error("bundled glasses catalog unavailable: %s", exc)
        return GlassesCatalog([])


def product_dict(product: GlassesProduct, source: str = "bundled") -> dict[str, Any]:
    d = product.to_dict()
    d.pop("glb", None)  # a server path; clients get model_url instead
    d["type"] = "glasses"
    d["source"] = source
    d["model_url"] = f"/v1/products/{product.sku}/model.glb"
    return d


def shade_dict(shade: Shade) -> dict[str, Any]:
    d = shade.to_dict()
    d["type"] = "lipstick"
    d.setdefault("sku", d.get("id"))  # one key across product types in mixed listings
    return d


class CatalogService:
    """Bundled products come from assets/models3d; uploaded ones live in the database.

    Uploaded GLBs are parsed once per process and kept in memory keyed by their sha256;
    the database stays the source of truth, so every replica serves a product uploaded
    through any other.
    """

    def __init__(
        self, assets_dir: Path, sessions: sessionmaker[Session], glb_limits: GlbLimits
    ) -> None:
        self.glb_limits = glb_limits
        self.bundled = _load_bundled(assets_dir)
        self.shades = _load_shades()
        self._sessions = sessions
        self._cache: dict[str, tuple[str, GlassesProduct]] = {}
        self._lock = threading.Lock()

    def shade_list(self) -> list[Shade]:
        return list(self.shades)

    # -- lookup --------------------------------------------------------------------------
    def _bundled(self, sku: str) -> GlassesProduct | None:
        try:
            return self.bundled.get(sku)
        except CatalogError:
            return None

    @staticmethod
    def _stored(session: Session, sku: str) -> CatalogProduct | None:
        # A sku no upload could have (NUL, longer than the column) is unknown, not a query
        # for PostgreSQL to refuse.
        if "\x00" in sku or len(sku) > 64:
            return None
        return session.get(CatalogProduct, sku)

    def get(self, sku: str) -> GlassesProduct:
        """The product for sku from either source; CatalogError when unknown."""
        product = self._bundled(sku)
        if product is not None:
            return product
        with self._sessions() as session:
            row = self._stored(session, sku)
            if row is None:
                raise CatalogError(f"unknown sku {sku!r}")
            return self._materialize(row)

    def _materialize(self, row: CatalogProduct) -> GlassesProduct:
        with self._lock:
            cached = self._cache.get(row.sku)
            if cached is not None and cached[0] == row.glb_sha256:
                return cached[1]
            # Validated at upload; checked again under today's limits (they may have tightened,
            # and a hand-edited row must not reach the renderer).
            scene = validate_glb(row.glb, self.glb_limits)
            product = product_from_scene(row.meta, scene, Path(f"{row.sku}.glb"))
            self._cache[row.sku] = (row.glb_sha256, product)
            return product

    def list_products(self) -> list[dict[str, Any]]:
        items = [product_dict(p) for p in self.bundled.products]
        seen = {p["sku"] for p in items}
        with self._sessions() as session:
            for row in session.scalars(select(CatalogProduct).order_by(CatalogProduct.sku)):
                if row.sku not in seen:
                    items.append(
                        {
                            **row.meta,
                            "type": "glasses",
                            "source": "uploaded",
                            "model_url": f"/v1/products/{row.sku}/model.glb",
                        }
                    )
        return items

    def product(self, sku: str) -> dict[str, Any]:
        bundled = self._bundled(sku)
        if bundled is not None:
            return product_dict(bundled)
        with self._sessions() as session:
            row = self._stored(session, sku)
            if row is None:
                raise CatalogError(f"unknown sku {sku!r}")
            return {
                **row.meta,
                "type": "glasses",
                "source": "uploaded",
                "model_url": f"/v1/products/{row.sku}/model.glb",
            }

    def glb_bytes(self, sku: str) -> bytes:
        bundled = self._bundled(sku)
        if bundled is not None:
            return Path(bundled.glb).read_bytes()
        with self._sessions() as session:
            row = self._stored(session, sku)
            if row is None:
                raise CatalogError(f"unknown sku {sku!r}")
            return row.glb

    # -- upload --------------------------------------------------------------------------
    def add(
        self, session: Session, meta: dict[str, Any], glb: bytes, limits: GlbLimits
    ) -> dict[str, Any]:
        """Validate the GLB and metadata, then store both (the caller's session commits)."""
        sku = meta["sku"]
        if self._bundled(sku) is not None or session.get(CatalogProduct, sku) is not None:
            raise Conflict(f"sku {sku!r} already exists")
        scene = validate_glb(glb, limits)
        product_from_scene(meta, scene, Path(f"{sku}.glb"))  # the one product validator
        digest = hashlib.sha256(glb).hexdigest()
        session.add(
            CatalogProduct(
                sku=sku,
                kind="glasses",
                name=meta["name"],
                style=meta["style"],
                meta=meta,
                glb=glb,
                glb_sha256=digest,
                created_at=utcnow(),
            )
        )
        session.flush()
        return {
            **meta,
            "type": "glasses",
            "source": "uploaded",
            "glb_sha256": digest,
            "model_url": f"/v1/products/{sku}/model.glb",
        }


def glb_limits(settings: Settings) -> GlbLimits:
    return GlbLimits(max_bytes=settings.max_glb_bytes, max_triangles=settings.max_glb_triangles)


def meta_for_product(meta: dict[str, Any]) -> dict[str, Any]:
    """Upload metadata completed with what the server derives (size band, size label)."""
    out = dict(meta)
    out["size_band"] = size_band_for_width(float(meta["frame_width_mm"]))
    out["size"] = f"{meta['lens_width_mm']:.0f}-{meta['bridge_mm']:.0f}-{meta['temple_mm']:.0f}"
    out["credit"] = out.get("credit") or ""
    out["license"] = out.get("license") or ""
    out.setdefault("material", "acetate")
    return out
