"""Build the eyewear catalog: parametric trimesh frames + converted shared models -> GLB + JSON.

Usage: python assets/models3d/build_catalog.py [--data ../shared/data] [--out assets/models3d]
Every GLB is in millimetres in the catalog frame: origin at the nose-bridge contact point,
+x the wearer's left, +y up, +z forward (out of the face). See docs/glasses.md.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh
from trimesh.visual.material import PBRMaterial

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
from meshgen import ellipse_profile, lens_outline, lens_sheet, mirror_x, superellipse, sweep  # noqa: E402

from vision.catalog import size_band_for_width  # noqa: E402
from vision.geometry import CanonicalFace  # noqa: E402
from vision.render.placement import CANONICAL_BRIDGE_ID  # noqa: E402
from vision.render.temples import ear_points_mm  # noqa: E402

LENS_CENTRE_Y = -4.5  # mm below the bridge point; real pupils sit 2..6 mm below landmark 168
RIM_Z = 2.5  # rim centre plane, mm in front of the nose surface at the bridge
TEMPLE_RINGS = 28  # cross-sections past TEMPLE_DENSE_FROM mm: the renderer bends the arm there
TEMPLE_DENSE_FROM = 75.0
MP_CREDIT = "MediaPipe face-effect glasses, Apache-2.0, (c) The MediaPipe Authors"
JZ_CREDIT = "Jeeliz glasses model, Apache-2.0, (c) Jeeliz"
TL_CREDIT = ('"Thug Life | Cool glasses | Stylise goggles" by MR EXPERT '
             "(https://sketchfab.com/Rahul.Kumar5), CC-BY-4.0")


@dataclass(frozen=True)
class Spec:
    sku: str
    name: str
    style: str
    lens: float
    bridge: float
    temple: float
    material: str  # acetate | metal
    price: float
    variants: tuple[tuple[str, str, tuple[float, float, float, float]], ...]


CLEAR = (0.92, 0.95, 1.0, 0.18)
GREY = (0.25, 0.27, 0.28, 0.72)
GREEN = (0.22, 0.32, 0.2, 0.7)
BROWN = (0.42, 0.28, 0.16, 0.65)
ROSE = (0.85, 0.45, 0.5, 0.45)

SPECS = (
    Spec("RND-47", "Lumen Round", "round", 47, 21, 140, "metal", 129.0,
         (("gold", "#c9a44c", CLEAR), ("gunmetal", "#4b4e54", CLEAR), ("silver", "#c0c4c8", GREY))),
    Spec("RND-51", "Lumen Round Large", "round", 51, 22, 145, "acetate", 139.0,
         (("tortoise", "#6b3d22", CLEAR), ("black", "#161616", CLEAR))),
    Spec("REC-S", "Atlas Rectangle S", "rectangular", 49, 17, 135, "acetate", 119.0,
         (("black", "#141414", CLEAR), ("navy", "#1d2a4a", CLEAR))),
    Spec("REC-M", "Atlas Rectangle M", "rectangular", 53, 18, 140, "acetate", 119.0,
         (("black", "#141414", CLEAR), ("tortoise", "#6b3d22", CLEAR), ("sun", "#141414", GREEN))),
    Spec("REC-L", "Atlas Rectangle L", "rectangular", 57, 18, 145, "acetate", 129.0,
         (("black", "#141414", CLEAR), ("grey", "#5a5f66", CLEAR))),
    Spec("CAT-51", "Vela Cat-Eye", "cat-eye", 51, 18, 140, "acetate", 149.0,
         (("black", "#121212", CLEAR), ("red", "#8e1b24", CLEAR), ("rose sun", "#d9a3a8", ROSE))),
    Spec("CAT-55", "Vela Cat-Eye Large", "cat-eye", 55, 17, 145, "acetate", 149.0,
         (("tortoise", "#6b3d22", BROWN), ("ivory", "#e8dcc4", CLEAR))),
    Spec("AVI-55", "Condor Aviator", "aviator", 55, 14, 140, "metal", 159.0,
         (("gold green", "#c9a44c", GREEN), ("silver grey", "#c0c4c8", GREY))),
    Spec("AVI-58", "Condor Aviator Large", "aviator", 58, 14, 145, "metal", 169.0,
         (("gold brown", "#c9a44c", BROWN), ("black", "#202020", GREY))),
)


def _nearest(outline: np.ndarray, side: float, y: float) -> np.ndarray:
    """The outline point on one side (+1 nasal, -1 temple) closest to height y."""
    cand = outline[np.sign(outline[:, 0]) == side]
    return cand[np.argmin(np.abs(cand[:, 1] - y))]


def _bend(mesh: trimesh.Trimesh, centre_x: float, half_bridge: float) -> None:
    """Face-form wrap and pantoscopic tilt, applied to the right-side front in place."""
    v = mesh.vertices
    v[:, 2] -= 0.06 * np.clip(np.abs(v[:, 0]) - half_bridge, 0, None)
    v[:, 2] += 0.14 * (v[:, 1] - LENS_CENTRE_Y)


def build_frame(spec: Spec) -> dict[str, trimesh.Trimesh]:
    """Frame (rims, bridge, end pieces, temples) and lenses for one spec, in the catalog frame."""
    metal = spec.material == "metal"
    rim_w, rim_d = (1.6, 2.2) if metal else (4.2, 4.5)
    outline = lens_outline(spec.style, spec.lens)
    lens_h = float(np.ptp(outline[:, 1]))
    cx = -(spec.lens + spec.bridge) / 2.0  # the wearer's right lens is on -x
    offset = np.array([cx, LENS_CENTRE_Y])
    world = outline + offset
    prof = (ellipse_profile(rim_w, rim_d, 8) if metal
            else superellipse(rim_w / 2, rim_d / 2, 4.0, 12))
    rim = sweep(np.column_stack([world, np.full(len(world), RIM_Z)]), prof, closed=True,
                ref=(0, 0, 1))
    parts = [rim]
    # Bridge: joins the rims' nasal sides and passes over the origin (its underside at y = 0).
    y_join = LENS_CENTRE_Y + 0.3 * lens_h
    p0 = np.array([*(_nearest(outline, 1, y_join - LENS_CENTRE_Y) + offset), RIM_Z])
    thick = 2.4 if metal else 4.5
    mid = np.array([0.0, thick / 2, RIM_Z + 0.8])
    p2 = p0 * [-1, 1, 1]
    ctrl = 2 * mid - (p0 + p2) / 2
    t = np.linspace(0, 1, 16)[:, None]
    bridge_path = (1 - t) ** 2 * p0 + 2 * t * (1 - t) * ctrl + t**2 * p2
    parts.append(sweep(bridge_path, ellipse_profile(thick, 3.0 if metal else 4.5, 8),
                       closed=False, ref=(0, 0, 1)))
    top_y = float(world[:, 1].max())
    if spec.style == "aviator":  # double bridge: a brow bar across the top
        q = np.array([*(_nearest(outline, 1, top_y - LENS_CENTRE_Y - 2) + offset),
                      RIM_Z])
        bar = np.linspace(q, q * [-1, 1, 1], 12)
        parts.append(sweep(bar, ellipse_profile(1.8, 1.8, 8), closed=False, ref=(0, 0, 1)))
    # End piece from the outer rim to the hinge, then the temple arm back to the ear and down.
    y_h = LENS_CENTRE_Y + 0.28 * lens_h
    outer = np.array([*(_nearest(outline, -1, y_h - LENS_CENTRE_Y) + offset), RIM_Z])
    end = outer + np.array([[0, 0, 0], [-3.5, 0, -0.8], [-5.0, 0, -2.5], [-5.0, 0, -5.0]])
    hinge = end[-1]
    parts.append(sweep(end, ellipse_profile(3.0 if not metal else 1.8, 5.0 if not metal else 2.4,
                                            8), closed=False, ref=(0, 1, 0)))
    # The temple arm: its own node, STRAIGHT from the hinge straight back at the height of the
    # canonical head's ear contact point (vision.render.temples), spec.temple long; the renderer
    # turns it at the hinge to each shopper's ear and bends the tip down behind it.
    temple_half_w = 0.8 if metal else 1.5
    bent_hinge = trimesh.Trimesh(hinge[None].copy(), process=False)
    _bend(bent_hinge, cx, spec.bridge / 2)  # where the bent front's end piece ends
    start = bent_hinge.vertices[0] + [0.0, 0.0, 0.5]  # overlap the end piece a little
    ear = ear_points_mm()[0]
    axis = np.array([0.0, ear[1] - start[1], ear[2] - start[2]])  # straight back, no splay
    axis /= np.linalg.norm(axis)
    # Rings sparse along the front part, dense where any head's ear bend can fall.
    s = np.unique(np.concatenate([np.linspace(0.0, TEMPLE_DENSE_FROM, 8),
                                  np.linspace(TEMPLE_DENSE_FROM, spec.temple, TEMPLE_RINGS)]))
    s = s[:, None]
    temple_prof = (ellipse_profile(2 * temple_half_w, 2.4, 8) if metal
                   else superellipse(temple_half_w, 3.0, 4.0, 12))
    temple = sweep(start + s * axis, temple_prof, closed=False, ref=(0, 1, 0))
    right = trimesh.util.concatenate(parts)
    lens = lens_sheet(outline * (1 - 0.6 * rim_w / spec.lens), RIM_Z, 1.5)
    lens.apply_translation([cx, LENS_CENTRE_Y, 0.0])
    front_parts = [right, lens]
    for mesh in front_parts:
        mask = mesh.vertices[:, 2] > hinge[2] - 0.5  # bend the front only, not the temples
        v = mesh.vertices.copy()
        sub = trimesh.Trimesh(v[mask], process=False)
        _bend(sub, cx, spec.bridge / 2)
        v[mask] = sub.vertices
        mesh.vertices = v
    frame = trimesh.util.concatenate([right, mirror_x(right)])
    lenses = trimesh.util.concatenate([lens, mirror_x(lens)])
    return {"frame": frame, "temple_right": temple, "temple_left": mirror_x(temple),
            "lens": lenses}


def _material(name: str, rgba: tuple[float, float, float, float], metal: float,
              rough: float) -> PBRMaterial:
    blend = rgba[3] < 1.0
    return PBRMaterial(name=name, baseColorFactor=[round(c * 255) for c in rgba],
                       metallicFactor=metal, roughnessFactor=rough,
                       alphaMode="BLEND" if blend else "OPAQUE", doubleSided=True)


def _hex_rgba(hex_color: str) -> tuple[float, float, float, float]:
    h = hex_color.lstrip("#")
    return (int(h[0:2], 16) / 255, int(h[2:4], 16) / 255, int(h[4:6], 16) / 255, 1.0)


def write_glb(parts: dict[str, trimesh.Trimesh], colours: dict[str, tuple], metal: float,
              path: Path) -> None:
    """One node per part (frame, lens, accent), each with its own named material."""
    scene = trimesh.Scene()
    for name, mesh in parts.items():
        mesh = trimesh.Trimesh(mesh.vertices.astype(np.float32), mesh.faces, process=False)
        mat = "frame" if name.startswith("temple_") else name  # temples take the frame colour
        rough = 0.15 if mat == "lens" else (0.35 if metal else 0.45)
        mesh.visual = trimesh.visual.TextureVisuals(
            material=_material(mat, colours[mat], metal if mat == "frame" else 0.0, rough))
        scene.add_geometry(mesh, node_name=name, geom_name=name)
    path.write_bytes(scene.export(file_type="glb", include_normals=True))


def measure(parts: dict[str, trimesh.Trimesh]) -> dict[str, float]:
    """Front width, lens width and bridge measured from the mesh (mm)."""
    frame = parts["frame"].vertices
    front = frame[frame[:, 2] > frame[:, 2].max() - 18.0]
    width = float(np.ptp(front[:, 0]))
    out = {"frame_width_mm": round(width, 1)}
    if "lens" in parts:
        lens = parts["lens"].vertices
        right = lens[lens[:, 0] < 0]
        out["lens_width_mm"] = round(float(np.ptp(right[:, 0])), 1)
        out["bridge_mm"] = round(float(2 * -right[:, 0].max()), 1)
    arm = frame[frame[:, 0] < 0]
    out["temple_mm"] = round(float(np.ptp(arm[:, 2])) * 1.05, 0)
    return out


def _origin_at_bridge(verts: np.ndarray) -> np.ndarray:
    """Move the underside/back of a model's bridge at the centre line to the origin."""
    front = verts[verts[:, 2] > verts[:, 2].max() - 12.0]
    cx = (front[:, 0].max() + front[:, 0].min()) / 2
    centre = front[np.abs(front[:, 0] - cx) < 2.5]
    return np.array([cx, centre[:, 1].min(), centre[:, 2].min()])


def convert_mediapipe(src: Path) -> dict[str, trimesh.Trimesh]:
    """MediaPipe's glasses (cm, canonical face space) -> mm relative to the canonical bridge."""
    text = (src / "glasses.pbtxt").read_text()
    vb = np.array(re.findall(r"vertex_buffer:\s*([-0-9.eE]+)", text), float).reshape(-1, 5)
    ib = np.array(re.findall(r"index_buffer:\s*(\d+)", text), int).reshape(-1, 3)
    bridge = CanonicalFace.load().vertices[CANONICAL_BRIDGE_ID]
    verts = (vb[:, :3] - bridge) * 10.0
    frame = trimesh.Trimesh(verts, ib, process=False)
    # MediaPipe's effect has no lens geometry (its texture only holds the frame): add clear
    # lenses filling the rim openings, measured on the mesh: x -10..-66 mm, y -31..+5 mm.
    x_in, x_out, y_lo, y_hi = -10.0, -66.0, -31.0, 5.0
    centre = np.array([(x_in + x_out) / 2, (y_lo + y_hi) / 2])
    outline = superellipse((x_in - x_out) / 2 + 1.0, (y_hi - y_lo) / 2 + 1.0, 3.0)
    right = lens_sheet(outline, 0.0, 1.5)
    right.apply_translation([centre[0], centre[1], float(_rim_z(verts, centre))])
    return {"frame": frame, "lens": trimesh.util.concatenate([right, mirror_x(right)])}


def _rim_z(verts: np.ndarray, centre: np.ndarray) -> float:
    """Depth (mm) of the frame front around a lens centre: where the lens sheet goes."""
    near = verts[np.linalg.norm(verts[:, :2] - centre, axis=1) < 35.0]
    return float(np.median(near[near[:, 2] > np.percentile(near[:, 2], 60), 2]))


def convert_jeeliz(src: Path, front_width_mm: float = 140.0) -> dict[str, trimesh.Trimesh]:
    """Jeeliz's unitless frame scaled so its front is front_width_mm wide."""
    scene = trimesh.load(src / "glasses.obj", force="scene", process=False)
    lens, frame = (scene.geometry[k] for k in ("glasses.obj", "glasses.obj_1"))
    fv = frame.vertices
    scale = front_width_mm / np.ptp(fv[fv[:, 2] > fv[:, 2].max() - 25.0][:, 0])
    origin = _origin_at_bridge(fv * scale)
    return {"frame": trimesh.Trimesh(fv * scale - origin, frame.faces, process=False),
            "lens": trimesh.Trimesh(lens.vertices * scale - origin, lens.faces, process=False)}


def convert_thuglife(src: Path) -> dict[str, trimesh.Trimesh]:
    """MR EXPERT's cartoon sunglasses (already mm, y up, z forward)."""
    scene = trimesh.load(src / "scene.gltf", force="scene")
    black = scene.geometry["black_mesh_black_0"]
    white = scene.geometry["white_mesh_white_0"]
    v = np.asarray(black.vertices)
    front = v[v[:, 2] > 0]
    # The pixel-art front is one flat plate: the bridge is the underside of its brow bar
    # (y = 2.6) at the centre line, and the plate's back (z = 8) stands 8 mm off the nose.
    origin = np.array([(front[:, 0].max() + front[:, 0].min()) / 2, 2.6, 0.0])
    return {"frame": trimesh.Trimesh(black.vertices - origin, black.faces, process=False),
            "accent": trimesh.Trimesh(white.vertices - origin, white.faces, process=False)}


def product_entry(sku: str, name: str, style: str, material: str, price: float, variants,
                  dims: dict[str, float], credit: str, license_: str) -> dict:
    return {
        "sku": sku, "name": name, "style": style, "material": material,
        "glb": f"frames/{sku}.glb", "price": price, "currency": "EUR",
        "lens_width_mm": dims["lens_width_mm"], "bridge_mm": dims["bridge_mm"],
        "temple_mm": dims["temple_mm"], "frame_width_mm": dims["frame_width_mm"],
        "size_band": size_band_for_width(dims["frame_width_mm"]),
        "variants": [{"name": n, "frame_color": c, "lens_tint": list(t)} for n, c, t in variants],
        "credit": credit, "license": license_,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=HERE)
    args = ap.parse_args(argv)
    (args.out / "frames").mkdir(parents=True, exist_ok=True)
    products = []
    for spec in SPECS:
        parts = build_frame(spec)
        metal = 0.9 if spec.material == "metal" else 0.0
        colours = {"frame": _hex_rgba(spec.variants[0][1]), "lens": spec.variants[0][2]}
        write_glb(parts, colours, metal, args.out / "frames" / f"{spec.sku}.glb")
        dims = {"lens_width_mm": spec.lens, "bridge_mm": spec.bridge, "temple_mm": spec.temple,
                "frame_width_mm": measure(parts)["frame_width_mm"]}
        products.append(product_entry(spec.sku, spec.name, spec.style, spec.material, spec.price,
                                      spec.variants, dims, "generated by build_catalog.py",
                                      "project"))
    glasses = args.data / "glasses"
    converted = (
        ("MP-CLASSIC", "Studio Classic", "rectangular", convert_mediapipe(glasses / "mediapipe"),
         (("red", "#b3261e", CLEAR), ("black", "#161616", GREY)), MP_CREDIT, "Apache-2.0", 99.0),
        ("JZ-WAYFARER", "Jeeliz Wayfarer", "wayfarer", convert_jeeliz(glasses / "jeeliz"),
         (("black", "#121212", GREEN), ("tortoise", "#6b3d22", BROWN)), JZ_CREDIT, "Apache-2.0",
         109.0),
        ("TL-PIXEL", "Thug Life Pixel Shades", "novelty",
         convert_thuglife(glasses / "mindar_thuglife"), (("black", "#151515", CLEAR),),
         TL_CREDIT, "CC-BY-4.0", 19.0),
    )
    for sku, name, style, parts, variants, credit, lic, price in converted:
        colours = {"frame": _hex_rgba(variants[0][1]), "lens": variants[0][2],
                   "accent": (0.92, 0.92, 0.92, 1.0)}
        write_glb(parts, colours, 0.0, args.out / "frames" / f"{sku}.glb")
        dims = measure(parts)
        if "lens_width_mm" not in dims:  # no separate lens mesh: the pixel blocks are the lenses
            dims.update(lens_width_mm=round((dims["frame_width_mm"] - 24) / 2, 1), bridge_mm=16.0)
        products.append(product_entry(sku, name, style, "acetate", price, variants, dims,
                                      credit, lic))
    doc = {"version": 1, "units": "mm",
           "frame": "origin nose-bridge contact point; +x wearer's left, +y up, +z forward",
           "products": products}
    (args.out / "catalog.json").write_text(json.dumps(doc, indent=2) + "\n")
    for p in products:
        size = (args.out / p["glb"]).stat().st_size
        print(f"{p['sku']:12s} {p['style']:12s} {p['lens_width_mm']:.0f}-{p['bridge_mm']:.0f}-"
              f"{p['temple_mm']:.0f} width {p['frame_width_mm']:.1f} {p['size_band']} "
              f"{size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
