"""Glasses try-on rendering: moderngl EGL renderer, head occluder, materials, compositing."""

from vision.render.composite import composite_premultiplied
from vision.render.placement import CANONICAL_BRIDGE_ID, glasses_to_camera, head_proxy
from vision.render.renderer import GlassesRenderer, Overlay, RenderOptions, RenderResult
from vision.render.temples import ear_points_mm, temple_reach_mm

__all__ = [
    "CANONICAL_BRIDGE_ID",
    "GlassesRenderer",
    "Overlay",
    "RenderOptions",
    "RenderResult",
    "composite_premultiplied",
    "ear_points_mm",
    "glasses_to_camera",
    "head_proxy",
    "temple_reach_mm",
]
