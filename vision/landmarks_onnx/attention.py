"""The attention mesh model's outputs merged into MediaPipe's 478 landmarks, as
tensors_to_face_landmarks_with_attention.pbtxt (LandmarksRefinementCalculator) merges them."""

from __future__ import annotations

import numpy as np

# Mesh indices each sub-model output refines (x, y only; z stays the mesh's).
LIPS = np.array([
    61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291,  # lower outer
    185, 40, 39, 37, 0, 267, 269, 270, 409,  # upper outer (no corners)
    78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308,  # lower inner
    191, 80, 81, 82, 13, 312, 311, 310, 415,  # upper inner
    76, 77, 90, 180, 85, 16, 315, 404, 320, 307, 306,  # lower semi-outer
    184, 74, 73, 72, 11, 302, 303, 304, 408,  # upper semi-outer
    62, 96, 89, 179, 86, 15, 316, 403, 319, 325, 292,  # lower semi-inner
    183, 42, 41, 38, 12, 268, 271, 272, 407,  # upper semi-inner
])
LEFT_EYE = np.array([
    33, 7, 163, 144, 145, 153, 154, 155, 133,  # lower contour
    246, 161, 160, 159, 158, 157, 173,  # upper contour (no corners)
    130, 25, 110, 24, 23, 22, 26, 112, 243,  # halo x2 lower
    247, 30, 29, 27, 28, 56, 190,  # halo x2 upper
    226, 31, 228, 229, 230, 231, 232, 233, 244,  # halo x3 lower
    113, 225, 224, 223, 222, 221, 189,  # halo x3 upper
    35, 124, 46, 53, 52, 65,  # halo x4 upper / eyebrow inner contour
    143, 111, 117, 118, 119, 120, 121, 128, 245,  # halo x5 lower
    156, 70, 63, 105, 66, 107, 55, 193,  # halo x5 upper / eyebrow outer contour
])
RIGHT_EYE = np.array([
    263, 249, 390, 373, 374, 380, 381, 382, 362,
    466, 388, 387, 386, 385, 384, 398,
    359, 255, 339, 254, 253, 252, 256, 341, 463,
    467, 260, 259, 257, 258, 286, 414,
    446, 261, 448, 449, 450, 451, 452, 453, 464,
    342, 445, 444, 443, 442, 441, 413,
    265, 353, 276, 283, 282, 295,
    372, 340, 346, 347, 348, 349, 350, 357, 465,
    383, 300, 293, 334, 296, 336, 285, 417,
])
EYE_CONTOUR = 16  # the first 16 of each eye list: the contour whose mean z the iris gets

# Output order of the converted model (tools/convert_face_models.py fixes it).
OUTPUTS = ("output_mesh_identity", "output_lips", "output_left_eye", "output_right_eye",
           "output_left_iris", "output_right_iris", "conv_faceflag")
MESH, LIPS_OUT, LEFT_EYE_OUT, RIGHT_EYE_OUT, LEFT_IRIS_OUT, RIGHT_IRIS_OUT, FLAG = range(7)


def refine(outs: list[np.ndarray], row: int) -> np.ndarray:
    """One face's model outputs (each (n, k)) -> (478, 3) landmarks in input-tensor pixels:
    the 468-point mesh with lips and eyes refined in x, y, then the left iris (468..472) and
    the right iris (473..477) with z the mean z of their eye's contour."""
    pts = np.empty((478, 3), dtype=np.float64)
    pts[:468] = outs[MESH][row].reshape(468, 3)
    for idx, k in ((LIPS, LIPS_OUT), (LEFT_EYE, LEFT_EYE_OUT), (RIGHT_EYE, RIGHT_EYE_OUT)):
        pts[idx, :2] = outs[k][row].reshape(-1, 2)
    for start, eye, k in ((468, LEFT_EYE, LEFT_IRIS_OUT), (473, RIGHT_EYE, RIGHT_IRIS_OUT)):
        pts[start:start + 5, :2] = outs[k][row].reshape(5, 2)
        pts[start:start + 5, 2] = pts[eye[:EYE_CONTOUR], 2].mean()
    return pts
