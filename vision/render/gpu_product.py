"""A glasses product's meshes on the GPU, with its temple arms refitted to each face's ears."""

from __future__ import annotations

from typing import Any

import numpy as np

from vision.catalog import GlassesProduct
from vision.geometry import HeadPose
from vision.render.materials import MeshPart, mesh_parts
from vision.render.temples import TempleRig, ear_points_mm, face_frame_landmarks, fitted_vertices

EAR_REFIT_MM = 0.2  # temples are refitted when an ear point moves at least this far


class GpuProduct:
    """A product's meshes on the GPU. Temple arms (temples.TEMPLE_NODES) are re-fitted to each
    face on the CPU and their small vertex buffers rewritten per frame."""

    def __init__(self, ctx: Any, prog: Any, product: GlassesProduct) -> None:
        self.parts = []
        self.temples: list[tuple[TempleRig, MeshPart, Any]] = []
        rigid = []
        for part in mesh_parts(product, rest=True):
            vbo = ctx.buffer(part.vertices.tobytes(), dynamic=bool(part.temple))
            ibo = ctx.buffer(part.indices.tobytes())
            vao = ctx.vertex_array(prog, [(vbo, "3f 3f", "in_pos", "in_normal")],
                                   index_buffer=ibo, index_element_size=4)
            self.parts.append((part, vao, (vbo, ibo)))
            if part.temple:
                self.temples.append((TempleRig.from_vertices(part.temple, part.vertices[:, :3]),
                                     part, vbo))
            else:
                rigid.append(part.vertices[:, :3])
        self.points = np.vstack(rigid).astype(np.float64)
        # Rigid points, then each temple's fitted points (rewritten in place by fit()).
        self._all = np.vstack([self.points] + [p.vertices[:, :3] for _, p, _ in self.temples]
                              ).astype(np.float64)
        self._ears: np.ndarray | None = None  # the ear points the temple buffers hold

    def fit(self, pose: HeadPose | None) -> np.ndarray:
        """Fit the temples to this face, None: the canonical head (rewriting their buffers);
        (n, 3) all points, GLB mm (read-only: shared across frames).

        Ears within EAR_REFIT_MM of those the buffers were fitted to keep that fit (no refit,
        no upload): landmark noise moves them ~0.05 mm a frame, and 0.2 mm at the ear moves
        the arm by under half a pixel at 1280x720."""
        if not self.temples:
            return self.points
        ears = ear_points_mm(None if pose is None else face_frame_landmarks(pose))
        if self._ears is not None and float(np.abs(ears - self._ears).max()) < EAR_REFIT_MM:
            return self._all
        start = len(self.points)
        for rig, part, vbo in self.temples:
            fitted = fitted_vertices(rig, part.vertices, ears)
            vbo.write(fitted.tobytes())
            self._all[start:start + len(fitted)] = fitted[:, :3]
            start += len(fitted)
        self._ears = ears
        return self._all

    def release(self) -> None:
        for _, vao, bufs in self.parts:
            vao.release()
            for b in bufs:
                b.release()
