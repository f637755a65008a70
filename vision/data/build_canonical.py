"""Regenerate canonical_face.npz from MediaPipe's face_geometry files (run once, by hand).

Usage: python -m vision.data.build_canonical [SRC_DIR]
SRC_DIR defaults to ../shared/data/face_geometry beside the repository. The output is vendored
so that the service never needs the shared data at run time.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np

from vision.errors import CatalogError

HERE = Path(__file__).resolve().parent
DEFAULT_SRC = HERE.parents[2] / "shared" / "data" / "face_geometry"
OUT = HERE / "canonical_face.npz"


def parse_metadata(text: str) -> dict[str, np.ndarray]:
    """Canonical mesh (VERTEX_PT) and Procrustes basis from a geometry_pipeline_metadata pbtxt."""
    basis = re.findall(r"landmark_id:\s*(\d+)\s+weight:\s*([-0-9.eE]+)", text)
    vb = np.array(re.findall(r"vertex_buffer:\s*([-0-9.eE]+)", text), dtype=np.float64)
    ib = np.array(re.findall(r"index_buffer:\s*(\d+)", text), dtype=np.int32)
    if "VERTEX_PT" not in text or vb.size % 5 or ib.size % 3:
        raise CatalogError("unexpected metadata layout (want VERTEX_PT triangles)")
    verts = vb.reshape(-1, 5)
    return {
        "vertices": verts[:, :3],
        "uv": verts[:, 3:],
        "triangles": ib.reshape(-1, 3),
        "procrustes_ids": np.array([int(i) for i, _ in basis], dtype=np.int32),
        "procrustes_weights": np.array([float(w) for _, w in basis], dtype=np.float64),
    }


def parse_obj_vertices(text: str) -> np.ndarray:
    rows = [line.split()[1:4] for line in text.splitlines() if line.startswith("v ")]
    return np.array(rows, dtype=np.float64)


def build(src: Path) -> dict[str, np.ndarray]:
    base = parse_metadata((src / "geometry_pipeline_metadata_landmarks.pbtxt").read_text())
    iris = parse_metadata(
        (src / "geometry_pipeline_metadata_including_iris_landmarks.pbtxt").read_text()
    )
    # The OBJ files are the same meshes; check so a mismatched drop of files is caught here.
    obj = parse_obj_vertices((src / "canonical_face_model.obj").read_text())
    obj_iris = parse_obj_vertices((src / "face_model_with_iris.obj").read_text())
    if not (np.allclose(obj, base["vertices"], atol=1e-5)
            and np.allclose(obj_iris, iris["vertices"], atol=1e-5)):
        raise CatalogError("OBJ and pbtxt canonical meshes disagree")
    if base["vertices"].shape != (468, 3) or iris["vertices"].shape != (478, 3):
        raise CatalogError("unexpected vertex counts")
    return {
        "vertices": base["vertices"].astype(np.float32),
        "uv": base["uv"].astype(np.float32),
        "triangles": base["triangles"],
        "procrustes_ids": base["procrustes_ids"],
        "procrustes_weights": base["procrustes_weights"].astype(np.float32),
        "vertices_iris": iris["vertices"].astype(np.float32),
        "uv_iris": iris["uv"].astype(np.float32),
        "triangles_iris": iris["triangles"],
    }


def main(argv: list[str]) -> None:
    src = Path(argv[0]) if argv else DEFAULT_SRC
    arrays = build(src)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes):",
          {k: v.shape for k, v in arrays.items()})


if __name__ == "__main__":
    main(sys.argv[1:])
