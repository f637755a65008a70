"""GLB limits that count what is drawn: instancing, node graphs, textures, all built here."""

from __future__ import annotations

import contextlib
import io
import json
import struct
import time
from typing import Any

import numpy as np
import pytest
import trimesh
from PIL import Image

from vision.catalog import DEFAULT_ASSETS, GlbLimits, drawn_triangles, validate_glb
from vision.errors import CatalogError

SERVICE = GlbLimits(max_bytes=4 * 1024 * 1024, max_triangles=100_000)  # the service's settings


def mesh_triangles(glb: bytes, *meshes: int) -> int:
    """Triangles of these meshes of a GLB, from its accessors (an independent count)."""
    doc, _ = unpack(glb)
    total = 0
    for m in meshes:
        for prim in doc["meshes"][m]["primitives"]:
            total += doc["accessors"][prim["indices"]]["count"] // 3
    return total


def unpack(glb: bytes) -> tuple[dict[str, Any], bytes]:
    json_len = struct.unpack_from("<I", glb, 12)[0]
    doc = json.loads(glb[20 : 20 + json_len])
    rest = glb[20 + json_len :]
    return doc, rest[8 : 8 + struct.unpack_from("<I", rest, 0)[0]] if rest else b""


def pack(doc: dict[str, Any], binary: bytes) -> bytes:
    return pack_raw(json.dumps(doc, separators=(",", ":")).encode(), binary)


def pack_raw(text: bytes, binary: bytes) -> bytes:
    text += b" " * (-len(text) % 4)
    binary += b"\0" * (-len(binary) % 4)
    body = struct.pack("<II", len(text), 0x4E4F534A) + text
    if binary:
        body += struct.pack("<II", len(binary), 0x004E4942) + binary
    return b"glTF" + struct.pack("<II", 2, 12 + len(body)) + body


@pytest.fixture(scope="module")
def real_glb() -> bytes:
    return (DEFAULT_ASSETS / "frames" / "REC-M.glb").read_bytes()


@pytest.fixture(scope="module")
def box_glb() -> bytes:
    return trimesh.Scene(trimesh.creation.box(extents=(1, 1, 1))).export(file_type="glb")


def with_nodes(glb: bytes, nodes: list[dict[str, Any]], roots: list[int]) -> bytes:
    doc, binary = unpack(glb)
    doc["nodes"], doc["scenes"], doc["scene"] = nodes, [{"nodes": roots}], 0
    return pack(doc, binary)


def with_image(glb: bytes, blob: bytes, **image: Any) -> bytes:
    doc, binary = unpack(glb)
    binary += b"\0" * (-len(binary) % 4)
    doc.setdefault("bufferViews", []).append(
        {"buffer": 0, "byteOffset": len(binary), "byteLength": len(blob)})
    doc.setdefault("images", []).append(
        {"bufferView": len(doc["bufferViews"]) - 1, "mimeType": "image/png", **image})
    binary += blob
    doc["buffers"][0]["byteLength"] = len(binary) + (-len(binary) % 4)
    return pack(doc, binary)


def image_bytes(width: int, height: int, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buf, format=fmt)
    return buf.getvalue()


class TestInstancing:
    def test_mesh_instanced_in_90000_nodes_is_refused_fast(self, box_glb: bytes) -> None:
        data = with_nodes(box_glb, [{"mesh": 0}] * 90_000, list(range(90_000)))
        assert len(data) < SERVICE.max_bytes
        start = time.perf_counter()
        with pytest.raises(CatalogError, match="90000 nodes; the limit is 2000"):
            validate_glb(data, SERVICE)
        # Even with no node limit, the drawn count (12 triangles x 90000) refuses it.
        with pytest.raises(CatalogError, match="draws 1080000 triangles; the limit is 100000"):
            validate_glb(data, GlbLimits(max_bytes=SERVICE.max_bytes, max_nodes=10**6,
                                         max_triangles=100_000))
        assert time.perf_counter() - start < 5.0

    def test_instances_of_the_real_frame_count_each_time(self, real_glb: bytes) -> None:
        rec_m = mesh_triangles(real_glb, 0, 1)  # the two meshes the nodes below draw
        nodes = [{"mesh": k % 2} for k in range(6)]
        data = with_nodes(real_glb, nodes, list(range(6)))
        scene = trimesh.load(io.BytesIO(data), file_type="glb", force="scene", process=False)
        assert isinstance(scene, trimesh.Scene)
        assert drawn_triangles(scene) == 3 * rec_m
        # each mesh is stored once, however many nodes draw it
        stored = mesh_triangles(real_glb, *range(len(unpack(real_glb)[0]["meshes"])))
        assert sum(len(g.faces) for g in scene.geometry.values()) == stored
        with pytest.raises(CatalogError, match=f"draws {3 * rec_m} triangles"):
            validate_glb(data, GlbLimits(max_triangles=3 * rec_m - 1))
        assert drawn_triangles(validate_glb(data, GlbLimits(max_triangles=3 * rec_m))
                               ) == 3 * rec_m

    def test_gpu_instancing_extension_refused(self, real_glb: bytes) -> None:
        doc, binary = unpack(real_glb)
        doc["extensionsUsed"] = ["EXT_mesh_gpu_instancing"]
        with pytest.raises(CatalogError, match="EXT_mesh_gpu_instancing"):
            validate_glb(pack(doc, binary))


class TestNodeGraph:
    @pytest.mark.parametrize("nodes", [
        [{"mesh": 0, "children": [1]}, {"mesh": 1, "children": [0]}],
        [{"mesh": 0}, {"mesh": 1, "children": [1]}],
        [{"mesh": 0}, {"mesh": 1}, {"children": [3]}, {"children": [4]}, {"children": [2]}],
    ], ids=["two_cycle", "self_loop", "detached_cycle"])
    def test_cycle_is_a_catalog_error(self, real_glb: bytes, nodes: list[dict[str, Any]]) -> None:
        with pytest.raises(CatalogError, match="cycle"):
            validate_glb(with_nodes(real_glb, nodes, [0]))

    def test_node_with_two_parents(self, real_glb: bytes) -> None:
        nodes: list[dict[str, Any]] = [{"children": [2]}, {"children": [2]}, {"mesh": 0},
                                       {"mesh": 1}]
        with pytest.raises(CatalogError, match="node 2 has two parents"):
            validate_glb(with_nodes(real_glb, nodes, [0, 1, 3]))

    @pytest.mark.parametrize(("depth", "ok"), [(32, True), (33, False), (100, False)])
    def test_depth_of_a_chain(self, real_glb: bytes, depth: int, ok: bool) -> None:
        nodes: list[dict[str, Any]] = [{"children": [k + 1]} for k in range(depth - 1)]
        nodes[-1]["children"].append(depth)
        nodes += [{"mesh": 0}, {"mesh": 1}]
        data = with_nodes(real_glb, nodes, [0])
        if ok:
            assert drawn_triangles(validate_glb(data)) == mesh_triangles(real_glb, 0, 1)
        else:
            with pytest.raises(CatalogError, match="deeper than 32 levels"):
                validate_glb(data)

    @pytest.mark.parametrize(("nodes", "roots", "why"), [
        ([{"mesh": 0, "children": [7]}, {"mesh": 1}], [0, 1], "out of range"),
        ([{"mesh": 0, "children": "1"}, {"mesh": 1}], [0, 1], "not a list"),
        ([{"mesh": 9}, {"mesh": 1}], [0, 1], "out of range"),
        ([{"mesh": "0"}, {"mesh": 1}], [0, 1], "out of range"),
        ([{"mesh": 0}, {"mesh": 1}], [0, 1, 1], "lists a node twice"),
        ([{"mesh": 0, "children": [1]}, {"mesh": 1}], [0, 1], "node that has a parent"),
        ([{"mesh": 0}, {"mesh": 1}], [0, 5], "out of range"),
    ])
    def test_malformed_graph(self, real_glb: bytes, nodes: list[dict[str, Any]],
                             roots: list[int], why: str) -> None:
        with pytest.raises(CatalogError, match=why):
            validate_glb(with_nodes(real_glb, nodes, roots))

    @pytest.mark.parametrize("seed", range(80))
    def test_mutated_json_only_gives_catalog_errors(self, real_glb: bytes, seed: int) -> None:
        """Numbers anywhere in the JSON replaced by hostile values: only CatalogError or a
        valid scene may come out, never another exception (the service's 500)."""
        rng = np.random.default_rng(seed)
        doc, binary = unpack(real_glb)
        slots: list[tuple[Any, Any]] = []

        def walk(obj: Any) -> None:
            items = obj.items() if isinstance(obj, dict) else enumerate(obj)
            for key, value in items:
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    slots.append((obj, key))
                elif isinstance(value, (dict, list)):
                    walk(value)

        walk(doc)
        hostile: list[Any] = [-1, 0, 1, 3, 7, 2**31, 10**12, -(2**40), 0.5, "x", None, [], {}]
        for k in rng.choice(len(slots), 2, replace=False):
            obj, key = slots[k]
            obj[key] = hostile[rng.integers(len(hostile))]
        with contextlib.suppress(CatalogError):  # any other exception type fails the test
            validate_glb(pack(doc, binary))


class TestTextures:
    @pytest.mark.parametrize(("size", "fmt"), [((64, 64), "PNG"), ((2048, 512), "JPEG")])
    def test_small_texture_passes(self, real_glb: bytes, size: tuple[int, int], fmt: str) -> None:
        validate_glb(with_image(real_glb, image_bytes(*size, fmt)))

    @pytest.mark.parametrize(("size", "fmt"), [((4096, 4096), "PNG"), ((4096, 16), "JPEG"),
                                               ((16, 2049), "PNG")])
    def test_big_texture_refused(self, real_glb: bytes, size: tuple[int, int], fmt: str) -> None:
        data = with_image(real_glb, image_bytes(*size, fmt))
        with pytest.raises(CatalogError, match=f"{size[0]}x{size[1]}; textures may be at most"):
            validate_glb(data, SERVICE)

    @pytest.mark.parametrize(("blob", "why"), [
        (b"", "only JPEG, PNG and WebP"),
        (b"not an image at all", "only JPEG, PNG and WebP"),
        (b"\x89PNG\r\n\x1a\n", "could not read the image size"),
    ])
    def test_unreadable_texture_refused(self, real_glb: bytes, blob: bytes, why: str) -> None:
        with pytest.raises(CatalogError, match=why):
            validate_glb(with_image(real_glb, blob))

    def test_webp_and_other_formats_refused(self, real_glb: bytes) -> None:
        for fmt, why in (("WEBP", "textures must be PNG or JPEG"), ("GIF", "only JPEG, PNG")):
            with pytest.raises(CatalogError, match=why):
                validate_glb(with_image(real_glb, image_bytes(64, 64, fmt)))

    def test_external_image_refused(self, real_glb: bytes) -> None:
        doc, binary = unpack(real_glb)
        doc["images"] = [{"uri": "../../etc/passwd"}]
        with pytest.raises(CatalogError, match="external"):
            validate_glb(pack(doc, binary))

    def test_too_many_images(self, real_glb: bytes) -> None:
        data = real_glb
        for _ in range(3):
            data = with_image(data, image_bytes(16, 16, "PNG"))
        with pytest.raises(CatalogError, match="3 images; the limit is 2"):
            validate_glb(data, GlbLimits(max_images=2))


class TestShippedModels:
    @pytest.mark.parametrize("path", sorted((DEFAULT_ASSETS / "frames").glob("*.glb")),
                             ids=lambda p: p.stem)
    def test_every_catalog_model_passes(self, path: Any) -> None:
        data = path.read_bytes()
        for limits in (GlbLimits(), SERVICE):
            assert 0 < drawn_triangles(validate_glb(data, limits)) <= limits.max_triangles
