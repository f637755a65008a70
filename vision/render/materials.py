"""Mesh parts of a product's GLB (frame, lens, fixed-colour accents) and their shading inputs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh

from vision.catalog import GlassesProduct, Variant
from vision.errors import CatalogError

# Part kinds: "frame" takes the variant's frame colour, "lens" the variant's tint, "accent" keeps
# the GLB material's own colour (e.g. printed details).
FRAME, LENS, ACCENT = "frame", "lens", "accent"
# Shading inputs by the product's `material` (shaders.GLASSES_FS): metallic > 0.5 selects the
# environment-mapped metal model (coloured reflection), otherwise acetate (translucent-looking
# coloured plastic with a white highlight); lenses have their own Fresnel-rim model.
METALLIC = {"metal": 1.0, "acetate": 0.0}
ROUGHNESS = {"metal": 0.25, "acetate": 0.3, LENS: 0.1}


@dataclass(frozen=True)
class MeshPart:
    """One draw call: interleaved (n, 6) float32 position (mm) + normal, (m, 3) uint32 indices."""

    kind: str
    vertices: np.ndarray
    indices: np.ndarray
    base_rgba: tuple[float, float, float, float]
    temple: int = 0  # +1 / -1: the wearer's left / right temple arm (temples.TEMPLE_NODES)


def _kind(name: str) -> str:
    low = name.lower()
    if "lens" in low:
        return LENS
    return FRAME if "frame" in low else ACCENT


def _base_color(geom: trimesh.Trimesh) -> tuple[float, float, float, float]:
    mat = getattr(geom.visual, "material", None)
    rgba = getattr(mat, "baseColorFactor", None)
    if rgba is None:
        return (0.5, 0.5, 0.5, 1.0)
    arr = np.asarray(rgba, dtype=np.float64)
    arr = arr / 255.0 if arr.max() > 1.0 or arr.dtype.kind in "iu" else arr
    return tuple(float(c) for c in arr[:4])  # type: ignore[return-value]


def mesh_parts(product: GlassesProduct, *, rest: bool = False) -> list[MeshPart]:
    """The product's GLB split into draw calls by part kind, in GLB millimetres.

    Temple arms (nodes temple_left / temple_right) are parts of their own; rest=True gives them
    as stored (straight), otherwise fitted to the canonical head (what a viewer without a face
    sees; the renderer fits them to each face).
    """
    from vision.render.temples import TEMPLE_NODES
    if product.scene is None:
        raise CatalogError(f"{product.sku}: product has no loaded GLB scene")
    grouped: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    colours: dict[str, tuple[float, float, float, float]] = {}
    for node in product.scene.graph.nodes_geometry:
        transform, geom_name = product.scene.graph[node]
        geom = product.scene.geometry[geom_name]
        if not isinstance(geom, trimesh.Trimesh) or len(geom.faces) == 0:
            continue
        mat = getattr(geom.visual, "material", None)
        kind = _kind(f"{node} {geom_name} {getattr(mat, 'name', '') or ''}")
        v = trimesh.transform_points(geom.vertices, transform)
        n = geom.vertex_normals @ np.asarray(transform)[:3, :3].T
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-9)
        key = kind if kind != ACCENT else f"{ACCENT}:{geom_name}"
        if kind == FRAME and str(node) in TEMPLE_NODES:
            key = f"{FRAME}:{node}"
        grouped.setdefault(key, []).append((v, n, np.asarray(geom.faces)))
        colours.setdefault(key, _base_color(geom))
    parts = []
    for key, items in grouped.items():
        verts, faces, offset = [], [], 0
        for v, n, f in items:
            verts.append(np.hstack([v, n]))
            faces.append(f + offset)
            offset += len(v)
        parts.append(MeshPart(key.split(":")[0], np.vstack(verts).astype(np.float32),
                              np.vstack(faces).astype(np.uint32), colours[key],
                              TEMPLE_NODES.get(key.split(":")[-1], 0)))
    # Opaque parts first, lenses last: translucent surfaces blend over what is already drawn.
    parts.sort(key=lambda p: p.kind == LENS)
    if rest:
        return parts
    from vision.render.temples import fit_parts

    return fit_parts(parts, None)


def part_color(part: MeshPart, variant: Variant) -> tuple[float, float, float, float]:
    """The colour a part is drawn with for a variant."""
    if part.kind == FRAME:
        return (*variant.frame_rgb, 1.0)
    if part.kind == LENS:
        return variant.lens_tint
    return part.base_rgba


def shading(part: MeshPart, product: GlassesProduct) -> tuple[float, float]:
    """(metallic, roughness) of a part."""
    if part.kind == LENS:
        return 0.0, ROUGHNESS[LENS]
    if part.kind == FRAME:
        return METALLIC.get(product.material, 0.0), ROUGHNESS.get(product.material, 0.4)
    return 0.0, 0.5
