"""Eyewear catalog: products from assets/models3d/catalog.json and their validated GLB models."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import trimesh

from vision.errors import CatalogError
from vision.glb_header import check_document, unparseable

DEFAULT_ASSETS = Path(__file__).resolve().parent.parent / "assets" / "models3d"
SizeBand = Literal["S", "M", "L"]
FRONT_DEPTH_MM = 18.0  # vertices this close to the foremost point count as the frame front
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


def size_band_for_width(frame_width_mm: float) -> SizeBand:
    """The size band of a total frame width: the same bands the face measurements recommend."""
    from vision.measure import size_band

    return size_band(frame_width_mm)


@dataclass(frozen=True)
class GlbLimits:
    """What a try-on GLB may weigh, how big (mm) a real frame can plausibly be, and what it
    may cost to draw.

    max_triangles is the render budget: the triangles drawn per frame, each mesh counted once
    per node that instances it (mesh_parts hands the renderer exactly these). The node, mesh,
    accessor, image and depth limits bound what is parsed before that count is known.
    """

    max_bytes: int = 512 * 1024
    max_triangles: int = 40_000
    width_mm: tuple[float, float] = (90.0, 180.0)
    height_mm: tuple[float, float] = (15.0, 90.0)
    depth_mm: tuple[float, float] = (5.0, 220.0)
    max_origin_offset_mm: float = 12.0  # the bridge origin must sit near the front's centre line
    max_nodes: int = 2_000
    max_depth: int = 32  # levels of the node tree, a root alone being 1
    max_meshes: int = 256
    max_accessors: int = 4_096
    max_images: int = 16
    max_texture_side: int = 2048  # per embedded PNG/JPEG image, checked from its header


def front_width_mm(vertices: np.ndarray) -> float:
    """Width (mm) of the frame front: the x extent of the points near the foremost z."""
    v = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    front = v[v[:, 2] > v[:, 2].max() - FRONT_DEPTH_MM]
    return float(np.ptp(front[:, 0]))


def validate_glb(data: bytes, limits: GlbLimits | None = None) -> trimesh.Scene:
    """Parse a GLB and check it is a plausible eyewear model in millimetres.

    Raises CatalogError saying why: too many bytes, not a GLB / not parseable, a node graph
    that is not a shallow forest, too many nodes/meshes/accessors/images, a texture too big,
    no triangles, too many drawn triangles, or bounds that are not a real frame in mm.
    """
    lim = limits or GlbLimits()
    if len(data) > lim.max_bytes:
        raise CatalogError(f"GLB is {len(data)} bytes; the limit is {lim.max_bytes}")
    # The JSON is checked first: trimesh would loop on a cycle and materialise every instance.
    check_document(data, lim)
    try:
        loaded = trimesh.load(io.BytesIO(data), file_type="glb", force="scene", process=False)
        if not isinstance(loaded, trimesh.Scene):
            raise TypeError(f"trimesh returned a {type(loaded).__name__}, not a Scene")
        scene = loaded
        tris = drawn_triangles(scene)
    except Exception as exc:  # trimesh raises many types on corrupt input
        raise unparseable(f"{type(exc).__name__}: {exc}") from exc
    if tris == 0:
        raise CatalogError("GLB holds no triangle meshes")
    if tris > lim.max_triangles:
        raise CatalogError(f"GLB draws {tris} triangles; the limit is {lim.max_triangles}")
    try:
        verts = scene_vertices(scene)
    except Exception as exc:  # a transform trimesh could not resolve
        raise unparseable(f"{type(exc).__name__}: {exc}") from exc
    if not np.isfinite(verts).all():
        raise CatalogError("GLB has non-finite vertex positions")
    ext = np.ptp(verts, axis=0)
    for axis, (lo, hi), value in zip(("width", "height", "depth"),
                                     (lim.width_mm, lim.height_mm, lim.depth_mm), ext,
                                     strict=True):
        if not lo <= value <= hi:
            raise CatalogError(
                f"implausible {axis} {value:.1f} mm (want {lo:g}..{hi:g} mm); "
                "GLB models must be in millimetres with the bridge at the origin")
    centre_x = (verts[:, 0].max() + verts[:, 0].min()) / 2
    if abs(centre_x) > lim.max_origin_offset_mm or not (
            verts[:, 1].min() < 0 < verts[:, 1].max()):
        raise CatalogError("the origin is not at the nose bridge (frame off-centre in x or y)")
    return scene


def drawn_triangles(scene: trimesh.Scene) -> int:
    """Triangles a scene draws: each mesh's faces once per node that instances it."""
    total = 0
    for node in scene.graph.nodes_geometry:
        geom = scene.geometry.get(scene.graph[node][1])
        if isinstance(geom, trimesh.Trimesh):
            total += len(geom.faces)
    return total


def scene_vertices(scene: trimesh.Scene) -> np.ndarray:
    """(n, 3) all mesh vertices of a scene in scene coordinates."""
    out = []
    for node in scene.graph.nodes_geometry:
        transform, geom_name = scene.graph[node]
        geom = scene.geometry[geom_name]
        if isinstance(geom, trimesh.Trimesh):
            out.append(trimesh.transform_points(geom.vertices, transform))
    return np.vstack(out) if out else np.zeros((0, 3))


@dataclass(frozen=True)
class Variant:
    name: str
    frame_color: str  # "#rrggbb"
    lens_tint: tuple[float, float, float, float]  # rgba 0..1; alpha = lens opacity

    @property
    def frame_rgb(self) -> tuple[float, float, float]:
        h = self.frame_color
        return (int(h[1:3], 16) / 255, int(h[3:5], 16) / 255, int(h[5:7], 16) / 255)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "frame_color": self.frame_color,
                "lens_tint": list(self.lens_tint)}


@dataclass(frozen=True)
class GlassesProduct:
    """One eyewear product; `scene` is its validated GLB (mm, bridge origin)."""

    sku: str
    name: str
    style: str
    variants: tuple[Variant, ...]
    price: float
    currency: str
    lens_width_mm: float
    bridge_mm: float
    temple_mm: float
    frame_width_mm: float
    size_band: SizeBand
    glb: Path
    credit: str
    license: str
    material: str = "acetate"
    scene: trimesh.Scene | None = field(default=None, repr=False, compare=False)

    @property
    def size_label(self) -> str:
        """The standard size triple, e.g. '52-18-140'."""
        return f"{self.lens_width_mm:.0f}-{self.bridge_mm:.0f}-{self.temple_mm:.0f}"

    def variant(self, name: str | None = None) -> Variant:
        """The named variant, or the first one when name is None."""
        if name is None:
            return self.variants[0]
        for v in self.variants:
            if v.name == name:
                return v
        known = ", ".join(v.name for v in self.variants)
        raise CatalogError(f"unknown variant {name!r} for {self.sku}; known: {known}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "sku": self.sku, "name": self.name, "style": self.style, "material": self.material,
            "variants": [v.to_dict() for v in self.variants], "price": self.price,
            "currency": self.currency, "lens_width_mm": self.lens_width_mm,
            "bridge_mm": self.bridge_mm, "temple_mm": self.temple_mm,
            "size": self.size_label, "frame_width_mm": self.frame_width_mm,
            "size_band": self.size_band, "glb": self.glb.name, "credit": self.credit,
            "license": self.license,
        }


def _variant(raw: dict[str, Any], sku: str) -> Variant:
    try:
        name, color, tint = str(raw["name"]), str(raw["frame_color"]), raw["lens_tint"]
    except (KeyError, TypeError) as exc:
        raise CatalogError(f"{sku}: variant needs name, frame_color, lens_tint") from exc
    if not _HEX.match(color):
        raise CatalogError(f"{sku}: frame_color {color!r} is not #rrggbb")
    tint_t = tuple(float(c) for c in tint)
    if len(tint_t) != 4 or not all(0.0 <= c <= 1.0 for c in tint_t):
        raise CatalogError(f"{sku}: lens_tint must be 4 numbers in 0..1, got {tint!r}")
    return Variant(name, color.lower(), tint_t)


def product_from_scene(raw: dict[str, Any], scene: trimesh.Scene, glb: Path) -> GlassesProduct:
    """The one product validator: catalog fields checked against each other and the model.

    Used for the bundled catalog and for uploads (whose GLB is already validated into
    `scene`); raises CatalogError saying which field is wrong.
    """
    sku = str(raw.get("sku", "?"))
    try:
        lens, bridge, temple = (float(raw[k]) for k in ("lens_width_mm", "bridge_mm", "temple_mm"))
        width = float(raw["frame_width_mm"])
        variants = tuple(_variant(v, sku) for v in raw["variants"])
        fields = {k: raw[k] for k in ("name", "style", "price", "currency", "size_band")}
        price = float(fields["price"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CatalogError(f"{sku}: bad or missing field ({exc})") from exc
    if not (30 <= lens <= 70 and 10 <= bridge <= 30 and 100 <= temple <= 165):
        raise CatalogError(f"{sku}: implausible size {lens:g}-{bridge:g}-{temple:g}")
    if fields["size_band"] not in ("S", "M", "L") or not variants:
        raise CatalogError(f"{sku}: size_band must be S, M or L and variants non-empty")
    if not (np.isfinite(price) and price >= 0):
        raise CatalogError(f"{sku}: price must be a non-negative number")
    measured = front_width_mm(scene_vertices(scene))
    if abs(measured - width) > 6.0:
        raise CatalogError(f"{sku}: frame_width_mm {width:g} but the GLB front is {measured:.1f}")
    return GlassesProduct(
        sku=sku, name=str(fields["name"]), style=str(fields["style"]), variants=variants,
        price=price, currency=str(fields["currency"]), lens_width_mm=lens,
        bridge_mm=bridge, temple_mm=temple, frame_width_mm=width,
        size_band=fields["size_band"], glb=glb, credit=str(raw.get("credit") or ""),
        license=str(raw.get("license") or ""), material=str(raw.get("material") or "acetate"),
        scene=scene,
    )


def product_from_dict(raw: dict[str, Any], base: Path, limits: GlbLimits | None = None
                      ) -> GlassesProduct:
    """Validate one catalog.json entry and load its GLB (relative to base)."""
    sku = str(raw.get("sku", "?"))
    glb_rel = str(raw.get("glb", ""))
    if not glb_rel:
        raise CatalogError(f"{sku}: bad or missing field ('glb')")
    path = (base / glb_rel).resolve()
    if base.resolve() not in path.parents:
        raise CatalogError(f"{sku}: glb path {glb_rel!r} leaves the catalog directory")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CatalogError(f"{sku}: cannot read {glb_rel}: {exc.strerror}") from exc
    try:
        scene = validate_glb(data, limits)
    except CatalogError as exc:
        raise CatalogError(f"{sku}: {exc}") from exc
    return product_from_scene(raw, scene, path)


class GlassesCatalog:
    """All products of a catalog directory (catalog.json + frames/*.glb), validated on load."""

    def __init__(self, products: list[GlassesProduct]) -> None:
        self._by_sku: dict[str, GlassesProduct] = {}
        for p in products:
            if p.sku in self._by_sku:
                raise CatalogError(f"duplicate sku {p.sku!r}")
            self._by_sku[p.sku] = p

    @classmethod
    def load(cls, assets_dir: Path | str | None = None,
             limits: GlbLimits | None = None) -> GlassesCatalog:
        """Read catalog.json from assets_dir (assets/models3d, or assets/ holding it)."""
        base = Path(assets_dir) if assets_dir is not None else DEFAULT_ASSETS
        if not (base / "catalog.json").is_file() and (base / "models3d").is_dir():
            base = base / "models3d"
        try:
            doc = json.loads((base / "catalog.json").read_text())
            entries = doc["products"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CatalogError(f"cannot read {base / 'catalog.json'}: {exc}") from exc
        return cls([product_from_dict(e, base, limits) for e in entries])

    @property
    def products(self) -> list[GlassesProduct]:
        return list(self._by_sku.values())

    def get(self, sku: str) -> GlassesProduct:
        try:
            return self._by_sku[sku]
        except KeyError:
            raise CatalogError(
                f"unknown sku {sku!r}; known: {', '.join(sorted(self._by_sku))}") from None

    def __len__(self) -> int:
        return len(self._by_sku)

    def __iter__(self) -> Iterator[GlassesProduct]:
        return iter(self._by_sku.values())
