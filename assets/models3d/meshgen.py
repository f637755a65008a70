"""Mesh building blocks for the eyewear generator: tube sweeps, lens sheets and outlines."""

from __future__ import annotations

import numpy as np
import trimesh

SEGMENTS = 64  # points around a lens outline: smooth at 1280x720 and keeps GLBs small


def superellipse(half_w: float, half_h: float, power: float, n: int = SEGMENTS) -> np.ndarray:
    """(n, 2) closed outline |x/a|^p + |y/b|^p = 1, counter-clockwise from +x."""
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    x = half_w * np.sign(c) * np.abs(c) ** (2.0 / power)
    y = half_h * np.sign(s) * np.abs(s) ** (2.0 / power)
    return np.stack([x, y], axis=1)


def lens_outline(style: str, lens_w: float, n: int = SEGMENTS) -> np.ndarray:
    """(n, 2) outline of the wearer's RIGHT lens, centred at 0, in mm; +x points to the nose."""
    a = lens_w / 2.0
    if style == "round":
        pts = superellipse(a, 0.9 * a, 2.2, n)
    elif style == "rectangular":
        pts = superellipse(a, 0.66 * a, 4.5, n)
    elif style == "cat-eye":
        # Upswept: the lower line rises toward the temple side to meet the top line in a
        # pointed outer corner drawn up and out (the "wing"); the top line falls toward the
        # nose. Checked by eye against the rectangular outline: the earlier, milder sweep
        # (the lower line lifted by 0.18a) read as rectangular on faces at a glance.
        pts = superellipse(a, 0.62 * a, 2.4, n)
        outer = np.clip(-pts[:, 0] / a, 0.0, 1.0)  # 0 at the centre, 1 at the outer side
        nasal = np.clip(pts[:, 0] / a, 0.0, 1.0)
        top = np.clip(pts[:, 1] / (0.62 * a), 0.0, 1.0)
        bottom = np.clip(-pts[:, 1] / (0.62 * a), 0.0, 1.0)
        pts[:, 1] += 0.60 * a * outer**2 * bottom + 0.40 * a * outer**3 * top
        pts[:, 0] -= 0.30 * a * outer**4 * top
        pts[:, 1] -= 0.15 * a * nasal * top
        pts[:, 1] -= 0.10 * a * (1 - outer) * bottom * np.clip(pts[:, 0] / a + 0.6, 0, 1)
    elif style == "aviator":
        pts = superellipse(a, 0.76 * a, 2.4, n)
        lower = np.clip(-pts[:, 1] / (0.76 * a), 0.0, 1.0)
        nasal = np.clip(pts[:, 0] / a + 0.3, 0.0, 1.3)
        pts[:, 1] -= 0.22 * a * lower**1.5 * nasal  # teardrop: deeper toward the nose
        pts[:, 1] += 0.08 * a * np.clip(pts[:, 1] / a, 0, 1)  # flatter brow line
    else:
        raise ValueError(f"unknown style {style!r}; choose round, rectangular, cat-eye, aviator")
    return pts - (pts.max(axis=0) + pts.min(axis=0)) / 2.0  # centre the bounding box


def _frames(path: np.ndarray, closed: bool, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-point unit vectors (n1, n2) spanning the plane across the path's tangent."""
    nxt = np.roll(path, -1, axis=0) if closed else np.vstack([path[1:], 2 * path[-1] - path[-2]])
    prv = np.roll(path, 1, axis=0) if closed else np.vstack([2 * path[0] - path[1], path[:-1]])
    tan = nxt - prv
    tan /= np.linalg.norm(tan, axis=1, keepdims=True)
    n1 = np.cross(tan, ref)
    n1 /= np.maximum(np.linalg.norm(n1, axis=1, keepdims=True), 1e-9)
    n2 = np.cross(n1, tan)
    return n1, n2


def sweep(
    path: np.ndarray, profile: np.ndarray, *, closed: bool, ref: tuple[float, float, float]
) -> trimesh.Trimesh:
    """Sweep a closed (k, 2) cross-section along an (m, 3) path; open paths get end caps.

    The profile's first axis follows cross(tangent, ref), the second the remaining normal.
    """
    path = np.asarray(path, dtype=np.float64)
    prof = np.asarray(profile, dtype=np.float64)
    m, k = len(path), len(prof)
    n1, n2 = _frames(path, closed, np.asarray(ref, dtype=np.float64))
    verts = (path[:, None, :] + prof[None, :, 0, None] * n1[:, None, :]
             + prof[None, :, 1, None] * n2[:, None, :]).reshape(-1, 3)
    rings = m if closed else m - 1
    i, j = np.meshgrid(np.arange(rings), np.arange(k), indexing="ij")
    i, j = i.ravel(), j.ravel()
    a, b = i * k + j, i * k + (j + 1) % k
    c, d = ((i + 1) % m) * k + (j + 1) % k, ((i + 1) % m) * k + j
    faces = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])
    if not closed:
        caps, extra = [], []
        for ring, centre in ((0, path[0]), (m - 1, path[-1])):
            idx = len(verts) + len(extra)
            extra.append(centre)
            r = ring * k + np.arange(k)
            tri = np.stack([np.full(k, idx), np.roll(r, -1), r], 1)
            caps.append(tri if ring else tri[:, ::-1])
        verts = np.vstack([verts, extra])
        faces = np.concatenate([faces, *caps])
    return trimesh.Trimesh(verts, faces, process=False)


def ellipse_profile(w: float, h: float, k: int = 8) -> np.ndarray:
    """(k, 2) elliptical cross-section w wide (first axis) and h high."""
    t = np.linspace(0.0, 2.0 * np.pi, k, endpoint=False)
    return np.stack([w / 2 * np.cos(t), h / 2 * np.sin(t)], axis=1)


def lens_sheet(outline: np.ndarray, z: float, curve: float) -> trimesh.Trimesh:
    """A thin curved lens filling a (n, 2) outline: fan from the centre, sagging back by `curve`."""
    n = len(outline)
    r = np.linalg.norm(outline, axis=1).max()
    rings = [0.0, 0.5, 0.8, 1.0]  # concentric rings so the base curve shows in the lighting
    pts = [np.array([[0.0, 0.0]])] + [outline * s for s in rings[1:]]
    xy = np.vstack(pts)
    zz = z - curve * (np.linalg.norm(xy, axis=1) / r) ** 2
    verts = np.column_stack([xy, zz])
    faces = [np.stack([np.zeros(n, int), 1 + np.arange(n), 1 + (np.arange(n) + 1) % n], 1)]
    for ring in range(len(rings) - 2):
        base = 1 + ring * n
        i = np.arange(n)
        a, b = base + i, base + (i + 1) % n
        c, d = base + n + (i + 1) % n, base + n + i
        faces += [np.stack([a, d, c], 1), np.stack([a, c, b], 1)]
    return trimesh.Trimesh(verts, np.concatenate(faces), process=False)


def mirror_x(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Mirror across x = 0 keeping the winding (and so the outward normals) consistent."""
    v = mesh.vertices.copy()
    v[:, 0] *= -1.0
    return trimesh.Trimesh(v, mesh.faces[:, ::-1], process=False)
