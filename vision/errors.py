"""Typed errors raised by the vision library (the service maps each `code` to an HTTP status)."""


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


class OptionsError(VisionError):
    """An option has a value outside its domain: intensity, finish, camera, smoothing, device."""

    code = "bad_option"


class SelectionError(VisionError):
    """The call needs a selection the pipeline does not have (intensity without a shade)."""

    code = "bad_selection"


class LandmarkError(VisionError):
    """Landmark or bounding-box arrays of the wrong shape."""

    code = "bad_landmarks"


class PoseError(VisionError):
    """No head pose can be solved from these landmarks (collinear, too compact, not finite)."""

    code = "degenerate_pose"


class MeasureError(VisionError):
    """The face cannot give this measurement (too few pixels to sample, say)."""

    code = "not_measurable"


class RenderError(VisionError):
    """The renderer was misused: another thread, a frame that does not match the camera."""

    code = "render_misuse"


class UnsupportedFormatError(FrameError):
    """The bytes are not a JPEG, PNG or WebP image (checked by magic bytes, before decoding)."""

    code = "unsupported_media_type"
