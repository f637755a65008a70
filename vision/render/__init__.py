"""Glasses try-on rendering: moderngl EGL renderer, head occluder, materials, compositing."""

from vision.render.composite import composite_premultiplied
from vision.render.placement import CANONICAL_BRIDGE_ID, glasses_to_camera, head_proxy
from vision.render.renderer import GlassesRenderer, Overlay, RenderOptions, RenderResult

__all__ = [
    "CANONICAL_BRIDGE_ID",
    "GlassesRenderer",
    "Overlay",
    "RenderOptions",
    "RenderResult",
    "composite_premultiplied",
    "glasses_to_camera",
    "head_proxy",
]
