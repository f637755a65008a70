"""Lipstick try-on: lip mask from the face mesh, shade catalog, Lab blending with finishes."""

from vision.lipstick.blend import LipstickPainter, PainterOptions
from vision.lipstick.mask import MaskParams, lip_mask, lip_mask_crop, polygon_lip_mask
from vision.lipstick.shades import (
    Finish,
    Shade,
    ShadeCatalog,
    check_intensity,
    load_shades,
)
from vision.lipstick.skin_tone import SkinTone, estimate_skin_tone

__all__ = [
    "Finish",
    "LipstickPainter",
    "MaskParams",
    "PainterOptions",
    "Shade",
    "ShadeCatalog",
    "SkinTone",
    "check_intensity",
    "estimate_skin_tone",
    "lip_mask",
    "lip_mask_crop",
    "load_shades",
    "polygon_lip_mask",
]
