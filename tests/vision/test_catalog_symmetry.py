"""Every generated catalog product is mirror-symmetric about the mid-plane x = 0."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from vision.catalog import GlassesCatalog, scene_vertices
from vision.render.materials import mesh_parts

GENERATED = ("RND-47", "RND-51", "REC-S", "REC-M", "REC-L", "CAT-51", "CAT-55", "AVI-55",
             "AVI-58")
MAX_MM = 0.5


@pytest.fixture(scope="module")
def catalog() -> GlassesCatalog:
    return GlassesCatalog.load()


def _hausdorff_to_mirror(points: np.ndarray) -> float:
    """Symmetric Hausdorff distance (mm) between a point set and its mirror image in x."""
    mirrored = points * [-1.0, 1.0, 1.0]
    a = cKDTree(points).query(mirrored)[0].max()
    b = cKDTree(mirrored).query(points)[0].max()
    return float(max(a, b))


@pytest.mark.parametrize("sku", GENERATED)
def test_mesh_is_mirror_symmetric(catalog: GlassesCatalog, sku: str) -> None:
    product = catalog.get(sku)
    assert product.scene is not None
    whole = _hausdorff_to_mirror(scene_vertices(product.scene))
    assert whole <= MAX_MM, (sku, whole)
    # Part by part too (frame, each lens, the temples as drawn on the canonical head), so a
    # bite out of one lens cannot hide behind the other half's frame vertices.
    for part in mesh_parts(product):
        pts = part.vertices[:, :3].astype(np.float64)
        if part.temple:  # a temple's mirror is the other temple
            other = next(p for p in mesh_parts(product) if p.temple == -part.temple)
            pts = np.vstack([pts, other.vertices[:, :3]])
        d = _hausdorff_to_mirror(pts)
        assert d <= MAX_MM, (sku, part.kind, part.temple, d)
