"""Typed errors raised by the vision library (the service maps them to HTTP 4xx)."""


class VisionError(Exception):
    """Base class: every error the vision library raises on bad input or bad use."""

    code = "vision_error"


class FrameError(VisionError):
    """The frame could not be used: empty, corrupt, wrong shape or dtype."""

    code = "bad_frame"


class FrameTooLargeError(FrameError):
    """The frame has more pixels than the configured limit."""

    code = "frame_too_large"


class RunningModeError(VisionError):
    """A tracker was used in a way its running mode does not allow."""

    code = "running_mode"


class CatalogError(VisionError):
    """A product, shade or 3D model is unknown or invalid."""

    code = "catalog"
