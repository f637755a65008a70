"""Where glasses sit on the canonical face, and the head proxy hiding what is behind the head."""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np

from vision.geometry import Camera, CanonicalFace

# Landmark 168 is the point between the eyes on the nose surface (the sellion) where a frame's
# bridge rests; the catalog's GLB origin is placed exactly there.
CANONICAL_BRIDGE_ID = 168
MM_TO_CM = 0.1
# Head proxy: the canonical face's outer rim is extruded back to these depths (canonical cm).
HEAD_SIDE_Z_CM = -9.0
HEAD_BACK_Z_CM = -17.0
HEAD_BACK_SHRINK = 0.55


def inverse_3x3(m: np.ndarray) -> np.ndarray:
    """inv(m) of a (3, 3) matrix from its cofactors (cross products of the rows).

    The per-frame matrices are tiny; np.linalg.inv goes through OpenBLAS's LAPACK, which can
    wake its worker threads and then waits for a core (measured 0.25 ms a call on the 2-core
    box while llvmpipe and MediaPipe threads run, against ~2 us here)."""
    a = np.asarray(m, dtype=np.float64)
    r0, r1, r2 = a[0], a[1], a[2]
    c0 = np.array([r1[1] * r2[2] - r1[2] * r2[1], r1[2] * r2[0] - r1[0] * r2[2],
                   r1[0] * r2[1] - r1[1] * r2[0]])
    c1 = np.array([r2[1] * r0[2] - r2[2] * r0[1], r2[2] * r0[0] - r2[0] * r0[2],
                   r2[0] * r0[1] - r2[1] * r0[0]])
    c2 = np.array([r0[1] * r1[2] - r0[2] * r1[1], r0[2] * r1[0] - r0[0] * r1[2],
                   r0[0] * r1[1] - r0[1] * r1[0]])
    det = float(r0 @ c0)
    if det == 0.0 or not np.isfinite(det):
        return np.linalg.inv(a)  # raises LinAlgError on a singular matrix, as before
    return np.stack([c0, c1, c2], axis=1) / det


def inverse_affine(m: np.ndarray) -> np.ndarray:
    """inv(m) of a (4, 4) affine transform (last row 0 0 0 1) without LAPACK; any other
    matrix goes to np.linalg.inv."""
    a = np.asarray(m, dtype=np.float64)
    if not np.array_equal(a[3], [0.0, 0.0, 0.0, 1.0]):
        return np.linalg.inv(a)
    out = np.eye(4)
    out[:3, :3] = inverse_3x3(a[:3, :3])
    out[:3, 3] = -out[:3, :3] @ a[:3, 3]
    return out


def bridge_point_cm(canonical: CanonicalFace | None = None) -> np.ndarray:
    """(3,) canonical-space position (cm) of the glasses' origin."""
    canon = canonical or CanonicalFace.load()
    return np.asarray(canon.vertices[CANONICAL_BRIDGE_ID], dtype=np.float64)


def glasses_to_face(canonical: CanonicalFace | None = None) -> np.ndarray:
    """(4, 4) GLB millimetres (bridge origin) -> canonical face centimetres."""
    m = np.diag([MM_TO_CM, MM_TO_CM, MM_TO_CM, 1.0])
    m[:3, 3] = bridge_point_cm(canonical)
    return m  # both frames share axes: +x wearer's left, +y up, +z forward


def glasses_to_camera(pose_matrix: np.ndarray, canonical: CanonicalFace | None = None
                      ) -> np.ndarray:
    """(4, 4) GLB mm -> camera cm for a HeadPose.matrix (face canonical cm -> camera cm)."""
    return np.asarray(pose_matrix, dtype=np.float64) @ glasses_to_face(canonical)


def _boundary_loops(triangles: np.ndarray) -> list[np.ndarray]:
    """Closed boundary loops of a triangle mesh, each following the triangles' winding."""
    t = np.asarray(triangles)
    edges = np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]])
    _, inverse, counts = np.unique(np.sort(edges, axis=1), axis=0, return_inverse=True,
                                   return_counts=True)
    boundary = edges[counts[inverse.ravel()] == 1]
    nxt = {int(a): int(b) for a, b in boundary}
    loops, seen = [], set()
    for start in nxt:
        if start in seen:
            continue
        loop, v = [start], nxt[start]
        seen.add(start)
        while v != start:
            loop.append(v)
            seen.add(v)
            v = nxt[v]
        loops.append(np.array(loop))
    return loops


def head_proxy(canonical: CanonicalFace | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Watertight-enough head proxy in canonical cm: (n, 3) float32 vertices, (m, 3) int32.

    The canonical face mesh, its outer rim extruded straight back (the sides of the head), then
    narrowed to a closed back. Inner holes, if any, are filled with centroid fans so nothing
    behind the face shows through the eyes or mouth.
    """
    if canonical is None:
        return _default_head_proxy()
    return _build_head_proxy(canonical)


@lru_cache(maxsize=1)
def _default_head_proxy() -> tuple[np.ndarray, np.ndarray]:
    return _build_head_proxy(CanonicalFace.load())


def _build_head_proxy(canon: CanonicalFace) -> tuple[np.ndarray, np.ndarray]:
    verts = [np.asarray(canon.vertices, dtype=np.float64)]
    tris = [np.asarray(canon.triangles, dtype=np.int64)]
    loops = sorted(_boundary_loops(canon.triangles), key=len)
    count = len(verts[0])
    for loop in loops[:-1]:  # inner holes
        verts.append(verts[0][loop].mean(axis=0, keepdims=True))
        tris.append(np.stack([loop, np.roll(loop, -1), np.full(len(loop), count)], axis=1))
        count += 1
    outer = loops[-1]
    rim = verts[0][outer]
    centre_y = float(rim[:, 1].mean())
    side = rim.copy()
    side[:, 2] = np.minimum(rim[:, 2], HEAD_SIDE_Z_CM)
    back = side.copy()
    back[:, 0] *= HEAD_BACK_SHRINK
    back[:, 1] = centre_y + (back[:, 1] - centre_y) * HEAD_BACK_SHRINK
    back[:, 2] = HEAD_BACK_Z_CM
    k = len(outer)
    ring_ids = [outer, count + np.arange(k), count + k + np.arange(k)]
    verts += [side, back, np.array([[0.0, centre_y, HEAD_BACK_Z_CM - 1.0]])]
    tip = count + 2 * k
    for r0, r1 in itertools.pairwise(ring_ids):
        a, b = r0, np.roll(r0, -1)
        c, d = np.roll(r1, -1), r1
        tris += [np.stack([b, a, d], 1), np.stack([b, d, c], 1)]
    last = ring_ids[-1]
    tris.append(np.stack([np.roll(last, -1), last, np.full(k, tip)], 1))
    return (np.vstack(verts).astype(np.float32), np.concatenate(tris).astype(np.int32))


def anchored_glasses_to_camera(pose_matrix: np.ndarray, bridge_px: np.ndarray | None,
                               camera: Camera) -> np.ndarray:
    """glasses_to_camera, shifted so the bridge projects onto the detected nose-bridge pixel.

    The rigid Procrustes fit leaves a few millimetres of residual at landmark 168 (expressions,
    individual nose shape); moving the frame parallel to the image plane, at the fitted depth,
    keeps it sitting on the nose the shopper sees. bridge_px: (2,) pixel of landmark 168 in the
    camera's resolution, or None for the rigid placement.
    """
    m = glasses_to_camera(pose_matrix)
    if bridge_px is None:
        return m
    rigid = m[:3, 3]
    target = camera.unproject(np.asarray(bridge_px, dtype=np.float64)[None], -rigid[2])[0]
    out = m.copy()
    out[:3, 3] = target
    return out
