"""Eyewear catalog: the shipped products, GLB validation, and clear errors for bad input."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import trimesh

from vision.catalog import (
    DEFAULT_ASSETS,
    GlassesCatalog,
    GlbLimits,
    front_width_mm,
    scene_vertices,
    size_band_for_width,
    validate_glb,
)
from vision.errors import CatalogError
from vision.geometry import CanonicalFace
from vision.render.materials import LENS, mesh_parts
from vision.render.placement import CANONICAL_BRIDGE_ID

GENERATED = ("RND-47", "RND-51", "REC-S", "REC-M", "REC-L", "CAT-51", "CAT-55", "AVI-55",
             "AVI-58")


@pytest.fixture(scope="module")
def catalog() -> GlassesCatalog:
    return GlassesCatalog.load()


@pytest.fixture(scope="module")
def real_glb() -> bytes:
    return (DEFAULT_ASSETS / "frames" / "REC-M.glb").read_bytes()


class TestShippedCatalog:
    def test_at_least_eight_products_with_size_triples(self, catalog: GlassesCatalog) -> None:
        assert len(catalog) >= 8
        for p in catalog:
            assert re.fullmatch(r"\d{2}-\d{2}-\d{3}", p.size_label), p.size_label
            assert 30 <= p.lens_width_mm <= 70 and 10 <= p.bridge_mm <= 30
            assert 120 <= p.temple_mm <= 160
            assert p.size_band == size_band_for_width(p.frame_width_mm)
            assert p.variants and all(re.fullmatch(r"#[0-9a-f]{6}", v.frame_color)
                                      for v in p.variants)
            assert p.glb.stat().st_size < 300 * 1024  # keeps the repository lean
            assert p.price > 0 and p.currency == "EUR"

    def test_all_styles_and_bands_present(self, catalog: GlassesCatalog) -> None:
        styles = {p.style for p in catalog}
        assert {"round", "rectangular", "cat-eye", "aviator"} <= styles
        assert {p.size_band for p in catalog} == {"S", "M", "L"}

    def test_frame_width_matches_the_model(self, catalog: GlassesCatalog) -> None:
        for p in catalog:
            assert p.scene is not None
            measured = front_width_mm(scene_vertices(p.scene))
            assert abs(measured - p.frame_width_mm) <= 6.0, p.sku

    @pytest.mark.parametrize("sku", GENERATED)
    def test_generated_lens_centres_follow_the_size_triple(self, catalog: GlassesCatalog,
                                                          sku: str) -> None:
        # GLB frame: +x is the wearer's left, so the right lens is at -(lens + bridge) / 2.
        p = catalog.get(sku)
        lens = next(part for part in mesh_parts(p) if part.kind == LENS).vertices[:, :3]
        for side in (-1, 1):
            half = lens[np.sign(lens[:, 0]) == side]
            centre_x = (half[:, 0].max() + half[:, 0].min()) / 2
            assert centre_x == pytest.approx(side * (p.lens_width_mm + p.bridge_mm) / 2, abs=1.5)
            assert np.ptp(half[:, 0]) == pytest.approx(p.lens_width_mm, abs=4.0)

    def test_mediapipe_conversion_keeps_canonical_placement(self, catalog: GlassesCatalog,
                                                            shared_data: Path) -> None:
        # The GLB (mm, bridge origin) mapped back to canonical cm must land on MediaPipe's
        # original vertices, which are already placed on the canonical face.
        text = (shared_data / "glasses" / "mediapipe" / "glasses.pbtxt").read_text()
        vb = np.array(re.findall(r"vertex_buffer:\s*([-0-9.eE]+)", text), float).reshape(-1, 5)
        frame = next(part for part in mesh_parts(catalog.get("MP-CLASSIC"))
                     if part.kind == "frame").vertices[:, :3]
        bridge = CanonicalFace.load().vertices[CANONICAL_BRIDGE_ID]
        back = frame / 10.0 + bridge
        original = vb[:, :3]
        assert len(back) == len(original)
        d = np.linalg.norm(np.sort(back, axis=0) - np.sort(original, axis=0), axis=1)
        assert d.max() < 1e-3

    def test_cc_by_credit_is_carried(self, catalog: GlassesCatalog) -> None:
        tl = catalog.get("TL-PIXEL")
        assert "MR EXPERT" in tl.credit and tl.license == "CC-BY-4.0"
        assert "MR EXPERT" in (DEFAULT_ASSETS / "CREDITS.md").read_text()
        assert tl.to_dict()["credit"] == tl.credit

    def test_to_dict_round_trips_the_fields(self, catalog: GlassesCatalog) -> None:
        d = catalog.get("REC-M").to_dict()
        assert d["size"] == "53-18-140" and d["variants"][0]["lens_tint"][3] < 1.0
        json.dumps(d)


class TestBadInput:
    def test_unknown_sku(self, catalog: GlassesCatalog) -> None:
        with pytest.raises(CatalogError, match="unknown sku 'NOPE'"):
            catalog.get("NOPE")

    def test_unknown_variant(self, catalog: GlassesCatalog) -> None:
        with pytest.raises(CatalogError, match="unknown variant 'plaid'"):
            catalog.get("REC-M").variant("plaid")

    def test_not_a_glb(self) -> None:
        with pytest.raises(CatalogError, match="not a GLB"):
            validate_glb(b"\x89PNG\r\n\x1a\n" + bytes(100))

    def test_truncated_glb(self, real_glb: bytes) -> None:
        with pytest.raises(CatalogError, match="could not be parsed"):
            validate_glb(real_glb[: len(real_glb) // 3])

    def test_oversized_glb(self, real_glb: bytes) -> None:
        with pytest.raises(CatalogError, match=r"bytes; the limit is 1000"):
            validate_glb(real_glb, GlbLimits(max_bytes=1000))

    def test_too_many_triangles(self, real_glb: bytes) -> None:
        with pytest.raises(CatalogError, match="triangles; the limit is 500"):
            validate_glb(real_glb, GlbLimits(max_triangles=500))

    @pytest.mark.parametrize(("scale", "why"), [(0.1, "implausible width"),
                                                (1000.0, "implausible width")])
    def test_wrong_units(self, real_glb: bytes, scale: float, why: str) -> None:
        # The same real frame exported in cm (or micrometres) must be refused.
        scene = trimesh.load(io.BytesIO(real_glb), file_type="glb", force="scene")
        scene.apply_scale(scale)
        data = scene.export(file_type="glb")
        with pytest.raises(CatalogError, match=why):
            validate_glb(data, GlbLimits(max_bytes=10**7))

    def test_origin_not_at_bridge(self, real_glb: bytes) -> None:
        scene = trimesh.load(io.BytesIO(real_glb), file_type="glb", force="scene")
        scene.apply_translation([40.0, 0.0, 0.0])
        with pytest.raises(CatalogError, match="origin is not at the nose bridge"):
            validate_glb(scene.export(file_type="glb"))

    def test_real_glb_passes(self, real_glb: bytes) -> None:
        scene = validate_glb(real_glb)
        assert 130 < np.ptp(scene_vertices(scene)[:, 0]) < 180

    def test_catalog_names_the_bad_product(self, tmp_path: Path, real_glb: bytes) -> None:
        shutil.copytree(DEFAULT_ASSETS / "frames", tmp_path / "frames")
        doc = json.loads((DEFAULT_ASSETS / "catalog.json").read_text())
        (tmp_path / "frames" / "REC-M.glb").write_bytes(real_glb[:500])
        (tmp_path / "catalog.json").write_text(json.dumps(doc))
        with pytest.raises(CatalogError, match="REC-M: GLB could not be parsed"):
            GlassesCatalog.load(tmp_path)

    def test_catalog_rejects_paths_outside(self, tmp_path: Path) -> None:
        doc = json.loads((DEFAULT_ASSETS / "catalog.json").read_text())
        doc["products"] = doc["products"][:1]
        doc["products"][0]["glb"] = "../../etc/passwd"
        (tmp_path / "catalog.json").write_text(json.dumps(doc))
        with pytest.raises(CatalogError, match="leaves the catalog directory"):
            GlassesCatalog.load(tmp_path)

    def test_missing_catalog(self, tmp_path: Path) -> None:
        with pytest.raises(CatalogError, match="cannot read"):
            GlassesCatalog.load(tmp_path)
