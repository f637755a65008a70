"""GLB container and glTF JSON checks made before trimesh parses anything: graph, counts, images."""

from __future__ import annotations

import base64
import binascii
import json
import struct
from typing import TYPE_CHECKING, Any

from vision.errors import CatalogError, FrameError
from vision.frame_header import JPEG, PNG, read_header

if TYPE_CHECKING:
    from vision.catalog import GlbLimits

_JSON, _BIN = 0x4E4F534A, 0x004E4942
# These multiply geometry at load or draw time (or need a decoder of their own): refused.
_REFUSED_EXTENSIONS = frozenset({"EXT_mesh_gpu_instancing", "KHR_draco_mesh_compression",
                                 "EXT_meshopt_compression", "KHR_texture_basisu",
                                 "EXT_texture_webp", "EXT_texture_avif"})
_TRIANGLE_MODES = (4, 5, 6)  # triangles, strip, fan


def unparseable(why: str) -> CatalogError:
    return CatalogError(f"GLB could not be parsed: {why}")


def split_glb(data: bytes) -> tuple[dict[str, Any], bytes]:
    """(glTF JSON document, BIN chunk) of a GLB container, checking every declared length."""
    if len(data) < 20 or data[:4] != b"glTF":
        raise CatalogError("not a GLB file (missing the 'glTF' header)")
    version, total = struct.unpack_from("<II", data, 4)
    if version != 2:
        raise unparseable(f"glTF version {version}, only 2 is supported")
    if total != len(data):
        raise unparseable(f"header says {total} bytes but the file has {len(data)} (truncated?)")
    chunks: list[tuple[int, bytes]] = []
    i = 12
    while i + 8 <= len(data):
        length, kind = struct.unpack_from("<II", data, i)
        if i + 8 + length > len(data):
            raise unparseable("a chunk runs past the end of the file")
        chunks.append((kind, data[i + 8 : i + 8 + length]))
        i += 8 + length
    if not chunks or chunks[0][0] != _JSON:
        raise unparseable("the first chunk is not JSON")
    try:
        doc = json.loads(chunks[0][1])
    except (ValueError, RecursionError) as exc:
        raise unparseable(f"the JSON chunk is not valid JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise unparseable("the JSON chunk is not an object")
    binary = chunks[1][1] if len(chunks) > 1 and chunks[1][0] == _BIN else b""
    return doc, binary


def check_document(data: bytes, lim: GlbLimits) -> None:
    """Refuse a GLB whose glTF JSON is malformed, over a count limit, not a node forest, too
    deep, draws too many triangles, or embeds an image that is not a small PNG/JPEG."""
    doc, binary = split_glb(data)
    try:
        _check(doc, binary, lim)
    except CatalogError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise unparseable(f"malformed glTF JSON ({type(exc).__name__}: {exc})") from exc


def _list(doc: dict[str, Any], key: str, limit: int) -> list[Any]:
    items = doc.get(key, [])
    if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
        raise unparseable(f"'{key}' must be a list of objects")
    if len(items) > limit:
        raise CatalogError(f"GLB has {len(items)} {key}; the limit is {limit}")
    return items


def _index(value: Any, size: int, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < size:
        raise unparseable(f"{what} index {value!r} is out of range (0..{size - 1})")
    return value


def _check(doc: dict[str, Any], binary: bytes, lim: GlbLimits) -> None:
    used = set(doc.get("extensionsUsed", [])) | set(doc.get("extensionsRequired", []))
    refused = sorted(used & _REFUSED_EXTENSIONS)
    if refused:
        raise CatalogError(f"GLB uses unsupported extensions: {', '.join(refused)}")
    nodes = _list(doc, "nodes", lim.max_nodes)
    meshes = _list(doc, "meshes", lim.max_meshes)
    accessors = _list(doc, "accessors", lim.max_accessors)
    images = _list(doc, "images", lim.max_images)
    views = _list(doc, "bufferViews", lim.max_accessors)
    for buf in _list(doc, "buffers", 16):
        if "uri" in buf and not str(buf["uri"]).startswith("data:"):
            raise CatalogError("GLB references an external buffer; models must be self-contained")
    roots = _forest_roots(nodes, lim.max_depth)
    mesh_tris = [_mesh_triangles(m, accessors) for m in meshes]
    drawn = 0
    for root in _scene_roots(doc, nodes, roots):
        stack = [root]
        while stack:
            node = nodes[stack.pop()]
            if "mesh" in node:
                drawn += mesh_tris[_index(node["mesh"], len(meshes), "mesh")]
            stack.extend(node.get("children", []))
    if drawn > lim.max_triangles:
        # Each mesh counts once per node instancing it: that is what every frame draws.
        raise CatalogError(f"GLB draws {drawn} triangles; the limit is {lim.max_triangles}")
    for k, image in enumerate(images):
        _check_image(k, image, views, binary, lim.max_texture_side)


def _forest_roots(nodes: list[dict[str, Any]], max_depth: int) -> list[int]:
    """Root nodes, once children form a forest (one parent each, no cycle) of bounded depth."""
    parent: dict[int, int] = {}
    for k, node in enumerate(nodes):
        children = node.get("children", [])
        if not isinstance(children, list):
            raise unparseable(f"node {k} children is not a list")
        for c in children:
            c = _index(c, len(nodes), f"node {k} child")
            if c in parent:
                raise CatalogError(f"GLB node {c} has two parents ({parent[c]} and {k}); the "
                                   "node hierarchy must be a tree")
            parent[c] = k
    roots = [k for k in range(len(nodes)) if k not in parent]
    depth = dict.fromkeys(roots, 1)
    stack = list(roots)
    while stack:
        k = stack.pop()
        if depth[k] > max_depth:
            raise CatalogError(f"GLB node tree is deeper than {max_depth} levels")
        for c in nodes[k].get("children", []):
            depth[c] = depth[k] + 1
            stack.append(c)
    if len(depth) != len(nodes):  # with one parent each, what no root reaches is a cycle
        cyclic = min(set(range(len(nodes))) - set(depth))
        raise CatalogError(f"GLB node hierarchy has a cycle (through node {cyclic})")
    return roots


def _scene_roots(doc: dict[str, Any], nodes: list[Any], roots: list[int]) -> list[int]:
    """The default scene's root nodes: each a real root, listed once."""
    scenes = doc.get("scenes")
    if not scenes:
        return roots  # no scene: loaders show every root
    if not isinstance(scenes, list):
        raise unparseable("'scenes' must be a list")
    scene = scenes[_index(doc.get("scene", 0), len(scenes), "scene")]
    listed = [_index(n, len(nodes), "scene node") for n in scene.get("nodes", [])]
    if len(set(listed)) != len(listed) or not set(listed) <= set(roots):
        raise CatalogError("GLB scene lists a node twice or a node that has a parent")
    return listed


def _mesh_triangles(mesh: dict[str, Any], accessors: list[dict[str, Any]]) -> int:
    """Triangles a mesh declares (index count, or vertex count when not indexed)."""
    total = 0
    for prim in mesh.get("primitives", []):
        mode = prim.get("mode", 4)
        if mode not in _TRIANGLE_MODES:
            continue
        ref = prim["indices"] if "indices" in prim else prim["attributes"]["POSITION"]
        count = int(accessors[_index(ref, len(accessors), "accessor")]["count"])
        total += max(count // 3 if mode == 4 else count - 2, 0)
    return total


def _check_image(k: int, image: dict[str, Any], views: list[dict[str, Any]], binary: bytes,
                 max_side: int) -> None:
    if "bufferView" in image:
        view = views[_index(image["bufferView"], len(views), "bufferView")]
        if view.get("buffer", 0) != 0:
            raise CatalogError(f"GLB image {k} is not stored in the GLB's binary chunk")
        start = int(view.get("byteOffset", 0))
        end = start + int(view["byteLength"])
        if start < 0 or end > len(binary):
            raise unparseable(f"image {k} lies outside the binary chunk")
        blob = binary[start:end]
    elif str(image.get("uri", "")).startswith("data:"):
        try:
            blob = base64.b64decode(str(image["uri"]).partition(",")[2], validate=True)
        except binascii.Error as exc:
            raise unparseable(f"image {k} data URI is not base64") from exc
    else:
        raise CatalogError(f"GLB image {k} is external or empty; models must be self-contained")
    try:
        header = read_header(blob)
    except FrameError as exc:
        raise CatalogError(f"GLB image {k}: {exc}") from exc
    if header.format not in (PNG, JPEG):
        raise CatalogError(f"GLB image {k} is {header.format}; textures must be PNG or JPEG")
    if max(header.width, header.height) > max_side:
        raise CatalogError(f"GLB image {k} is {header.width}x{header.height}; textures may be "
                           f"at most {max_side}x{max_side}")
