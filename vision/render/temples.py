"""Temple arms fitted to the head: ear contact points and a hinge + ear bend of each arm.

A product whose GLB has nodes named ``temple_left`` / ``temple_right`` holds each arm STRAIGHT
from its hinge (the arm's front end) in the GLB; the renderer turns it at the hinge toward the
shopper's ear, keeps it a small clearance outside the head proxy (the occluder), and bends the
part past the ear down behind it (a circular bend, so the arm keeps its length). Products
without such nodes keep their rigid temples.

Coordinates: GLB millimetres (bridge origin, +x the wearer's left, +y up, +z forward), the same
axes as the canonical face (centimetres, see placement.glasses_to_face).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from vision.geometry import CanonicalFace, HeadPose, transform_points
from vision.render.materials import MeshPart
from vision.render.placement import bridge_point_cm, head_proxy, inverse_affine

TEMPLE_NODES = {"temple_left": 1, "temple_right": -1}  # node name -> side (+x = wearer's left)
# Ear contact point from the face: the temple rests on the skull at the top of the ear's root,
# behind the face contour (234/454) by this fraction of the face width (AFLW-sized adult heads:
# ~98 mm behind the sellion for a 153 mm canonical face width), at the height of the contour
# between the eye (127/356) and the temple (162/389).
EAR_BACK_PER_WIDTH = 0.14
CONTOUR_IDS = ((234, 454), (127, 356), (162, 389))
EAR_MAX_DEVIATION_MM = np.array([8.0, 4.0, 10.0])  # per-face ear point vs the canonical one
EAR_CLEARANCE_MM = 3.0  # arm surface kept this far outside the head proxy's side
BEND_RADIUS_MM = 10.0
BEND_DEG = 40.0  # the tip's drop behind the ear
# The tip ends TUCK_MM inside the head proxy, reached TUCK_OVER_MM past the ear point.
TUCK_MM, TUCK_OVER_MM = 6.0, 8.0
EAR_HOOK_MM = 25.0  # least arm length past the ear point that holds the frame (reach)


@dataclass(frozen=True)
class TempleRig:
    """A straight rest-pose arm: hinge point, unit axis (toward the tip) and each vertex's
    arm coordinate s (mm from the hinge) and offsets (up, side) across the arm."""

    side: int
    hinge: np.ndarray
    axis: np.ndarray
    s: np.ndarray
    up: np.ndarray
    across: np.ndarray
    half_width: float
    length: float

    @classmethod
    def from_vertices(cls, side: int, verts: np.ndarray) -> TempleRig:
        v = np.asarray(verts, dtype=np.float64)
        centred = v - v.mean(axis=0)
        axis = np.linalg.svd(centred, full_matrices=False)[2][0]
        if axis[2] > 0:  # the arm runs back (-z) from the hinge
            axis = -axis
        proj = centred @ axis
        front = proj < proj.min() + 0.75
        hinge = v[front].mean(axis=0)
        hinge = hinge - ((hinge - v.mean(axis=0)) @ axis - proj.min()) * axis
        up_a, side_a = _frame(axis)
        rel = v - hinge
        s = rel @ axis
        across = rel @ side_a
        return cls(side, hinge, axis, s, rel @ up_a, across,
                   float(np.abs(across).max()), float(s.max()))


def _cross3(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a x b of two 3-vectors (np.cross costs ~15 us of argument handling per call)."""
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2],
                     a[0] * b[1] - a[1] * b[0]])


def _frame(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(up, side) unit vectors across a direction t, up as close to +y as possible."""
    up = np.array([0.0, 1.0, 0.0]) - t[1] * t
    up /= np.linalg.norm(up)
    return up, _cross3(t, up)


def face_frame_landmarks(pose: HeadPose | None) -> np.ndarray:
    """(468, 3) the face's landmarks in its own canonical frame (cm); the canonical model when
    the pose has no metric landmarks."""
    if pose is None or pose.metric_landmarks is None:
        return np.asarray(CanonicalFace.load().vertices, dtype=np.float64)
    inv = inverse_affine(np.asarray(pose.matrix, dtype=np.float64))
    return transform_points(inv, np.asarray(pose.metric_landmarks[:468], dtype=np.float64))


def ear_points_mm(face_cm: np.ndarray | None = None) -> np.ndarray:
    """(2, 3) ear contact points [right, left] in GLB mm, on the head's side surface.

    face_cm: (468, 3) landmarks in the face frame (face_frame_landmarks); None = canonical.
    Mirror-symmetric about the face's mid-plane: the far side's contour is a guess when the head
    is turned, so both sides share the mean of the two.
    """
    f = np.asarray(CanonicalFace.load().vertices if face_cm is None else face_cm,
                   dtype=np.float64)
    bridge = f[168]
    (r0, l0), (r1, l1), (r2, l2) = CONTOUR_IDS
    width = float(abs(f[l0, 0] - f[r0, 0]))
    half = max(width, abs(f[l1, 0] - f[r1, 0])) / 2.0
    z = float((f[r0, 2] + f[l0, 2]) / 2.0) - EAR_BACK_PER_WIDTH * width
    y = float(0.6 * (f[r1, 1] + f[l1, 1]) / 2.0 + 0.4 * (f[r2, 1] + f[l2, 1]) / 2.0)
    rel = (np.array([half, y, z]) - [0.0, bridge[1], bridge[2]]) * 10.0
    if face_cm is not None:  # the sides' landmarks are guessed on turned heads: stay near
        canon = ear_points_mm(None)[1]  # the canonical ear (ear height varies little)
        rel = canon + np.clip(rel - canon, -EAR_MAX_DEVIATION_MM, EAR_MAX_DEVIATION_MM)
    rel[0] = max(rel[0], float(head_side_mm(rel[None, 1:])[0]))
    return np.array([rel * [-1, 1, 1], rel])


@lru_cache(maxsize=1)
def _side_grid() -> tuple[np.ndarray, float, float, float]:
    """Half-width (mm) of the occluder's head proxy on a (y, z) grid in GLB mm (2 mm cells)."""
    verts, tris = head_proxy()
    v = (verts.astype(np.float64) - bridge_point_cm()) * 10.0
    # Sample the triangles densely (barycentric) so the grid sees the surface, not only corners.
    tri = v[tris]
    edge = np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=2).max(axis=1)
    steps = np.clip(np.ceil(edge / 1.5), 1, 200).astype(int)  # samples ~1.5 mm apart
    chunks = []
    for k in np.unique(steps):
        a, b = np.meshgrid(np.arange(k + 1), np.arange(k + 1), indexing="ij")
        keep = a + b <= k
        wa, wb = a[keep] / k, b[keep] / k
        t = tri[steps == k]
        chunks.append((t[:, None, 0] * (1 - wa - wb)[None, :, None]
                       + t[:, None, 1] * wa[None, :, None]
                       + t[:, None, 2] * wb[None, :, None]).reshape(-1, 3))
    pts = np.vstack(chunks)
    cell, y0, z0 = 2.0, -120.0, -230.0
    grid = np.zeros((int(240 / cell), int(320 / cell)))
    iy = np.clip(((pts[:, 1] - y0) / cell).astype(int), 0, grid.shape[0] - 1)
    iz = np.clip(((pts[:, 2] - z0) / cell).astype(int), 0, grid.shape[1] - 1)
    np.maximum.at(grid, (iy, iz), np.abs(pts[:, 0]))
    # Conservative: the widest point of the neighbouring cells.
    padded = np.pad(grid, 1)
    grid = np.max([padded[1 + dy:1 + dy + grid.shape[0], 1 + dz:1 + dz + grid.shape[1]]
                   for dy in (-1, 0, 1) for dz in (-1, 0, 1)], axis=0)
    return grid, cell, y0, z0


def head_side_mm(yz: np.ndarray) -> np.ndarray:
    """(n,) half-width (mm) of the head proxy at (n, 2) (y, z) GLB-mm points."""
    grid, cell, y0, z0 = _side_grid()
    p = np.asarray(yz, dtype=np.float64).reshape(-1, 2)
    iy = np.clip(((p[:, 0] - y0) / cell).astype(int), 0, grid.shape[0] - 1)
    iz = np.clip(((p[:, 1] - z0) / cell).astype(int), 0, grid.shape[1] - 1)
    return grid[iy, iz]


def _centreline(rig: TempleRig, ear: np.ndarray, s: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre points, tangents and up vectors of the fitted arm at arm coordinates s."""
    d = ear - rig.hinge
    length = float(np.linalg.norm(d))
    d /= length
    up_d, _ = _frame(d)
    theta, r = np.radians(BEND_DEG), BEND_RADIUS_MM
    past = np.clip(s - length, 0.0, None)
    phi = np.minimum(past / r, theta)
    cos, sin = np.cos(phi)[:, None], np.sin(phi)[:, None]
    straight_after = (past - r * theta).clip(0.0)[:, None]
    tan = cos * d - sin * up_d
    up = sin * d + cos * up_d
    # One product per basis vector (d, up_d): the same sum as hinge + along d + the bend + the
    # straight part after it, with fewer (n, 3) temporaries.
    along = np.minimum(s, length)[:, None] + r * sin + straight_after * cos
    drop = r * (1 - cos) + straight_after * sin
    centre = rig.hinge + along * d - drop * up_d
    return centre, tan, up


def _clearance_push(rig: TempleRig, ear: np.ndarray, s_line: np.ndarray) -> np.ndarray:
    """Outward (along the side's x) push of the arm's centre at s_line, smooth and >= what
    keeps the arm EAR_CLEARANCE_MM outside the head proxy between the hinge and the ear."""
    centre, _, _ = _centreline(rig, ear, s_line)
    need = head_side_mm(centre[:, 1:]) + EAR_CLEARANCE_MM + rig.half_width
    raw = np.clip(need - rig.side * centre[:, 0], 0.0, None)
    step = float(s_line[1] - s_line[0])
    w = max(round(10.0 / step), 1)
    padded = np.pad(raw, w, mode="edge")
    env = np.lib.stride_tricks.sliding_window_view(padded, 2 * w + 1).max(axis=1)
    kernel = np.ones(w + 1) / (w + 1)
    smooth = np.convolve(np.pad(env, w // 2 + 1, mode="edge"), kernel, mode="same")
    smooth = smooth[w // 2 + 1:w // 2 + 1 + len(raw)]
    # Attached at the hinge: the push grows over the first 12 mm of the arm.
    return np.maximum(smooth, raw) * np.clip(s_line / 12.0, 0.0, 1.0)


def fit_temple(rig: TempleRig, normals: np.ndarray, ear: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """The arm's (n, 3) vertices and normals turned at the hinge toward `ear` (GLB mm, the
    arm's centre target), pushed outside the head proxy and bent down past the ear."""
    s = rig.s
    centre, tan, up = _centreline(rig, ear, s)
    # tan x up is the same for every vertex: the bend turns both about the side axis, d x up_d.
    d = (ear - rig.hinge) / np.linalg.norm(ear - rig.hinge)
    side_d = _frame(d)[1]
    s_line = np.linspace(0.0, max(rig.length, 1.0), 96)
    push = np.interp(s, s_line, _clearance_push(rig, ear, s_line))
    verts = centre + rig.up[:, None] * up + rig.across[:, None] * side_d
    # Past the ear the tip tucks in behind it (under the head proxy's surface, where the real
    # ear would hide it) instead of hanging in the air beside the head.
    past = np.clip((s - float(np.linalg.norm(ear - rig.hinge))) / TUCK_OVER_MM, 0.0, 1.0)
    tuck = (EAR_CLEARANCE_MM + rig.half_width + TUCK_MM) * past * past * (3 - 2 * past)
    verts[:, 0] += rig.side * (push - tuck)
    # Normals: the rest frame (axis, up, side) -> the fitted one, per vertex.
    up_a, side_a = _frame(rig.axis)
    n = np.asarray(normals, dtype=np.float64)
    na, nu, ns = n @ rig.axis, n @ up_a, n @ side_a
    nrm = na[:, None] * tan + nu[:, None] * up + ns[:, None] * side_d
    return verts, nrm


def ear_targets_mm(ears: np.ndarray, rigs: list[TempleRig]) -> dict[int, np.ndarray]:
    """Per side, the arm's centre target: the ear point moved out by the clearance and the
    arm's half-width."""
    out = {}
    for rig in rigs:
        e = ears[1 if rig.side > 0 else 0].copy()
        e[0] += rig.side * (EAR_CLEARANCE_MM + rig.half_width)
        out[rig.side] = e
    return out


def temple_reach_mm(hinge_mm: np.ndarray, pose: HeadPose | None = None) -> float:
    """Temple length (mm) a head needs: hinge -> ear contact + EAR_HOOK_MM behind the ear.

    hinge_mm: (3,) or (2, 3) hinge point(s) in GLB mm (TempleRig.hinge); the longer side
    counts. A product whose temple_mm is shorter does not reach behind this shopper's ears.
    """
    ears = ear_points_mm(face_frame_landmarks(pose))
    h = np.atleast_2d(np.asarray(hinge_mm, dtype=np.float64))
    dist = [np.linalg.norm(ears[1 if p[0] > 0 else 0] - p) for p in h]
    return float(max(dist) + EAR_HOOK_MM)


def fitted_vertices(rig: TempleRig, rest: np.ndarray, ears: np.ndarray) -> np.ndarray:
    """(n, 6) float32 position + normal of a temple part fitted to ears (ear_points_mm)."""
    target = ear_targets_mm(ears, [rig])[rig.side]
    v, n = fit_temple(rig, rest[:, 3:6], target)
    return np.hstack([v, n]).astype(np.float32)


def fit_parts(parts: list[MeshPart], face_cm: np.ndarray | None) -> list[MeshPart]:
    """The parts with each temple arm fitted to a face (face_frame_landmarks; None: canonical)."""
    if not any(p.temple for p in parts):
        return parts
    ears = ear_points_mm(face_cm)
    out = []
    for p in parts:
        if p.temple:
            rig = TempleRig.from_vertices(p.temple, p.vertices[:, :3])
            p = replace(p, vertices=fitted_vertices(rig, p.vertices, ears))
        out.append(p)
    return out
