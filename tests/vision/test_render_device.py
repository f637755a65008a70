"""The renderer's device choice: a GPU when there is one, else (as on CI) Mesa's llvmpipe."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from vision.catalog import GlassesCatalog
from vision.errors import OptionsError
from vision.geometry import Camera, estimate_pose
from vision.landmarks import FaceTracker
from vision.render import GlassesRenderer, RenderOptions
from vision.render.device import create_context, is_software


def _has_gpu() -> bool:
    """From the machine, not from the code under test: a GPU's device node is there (an
    NVIDIA card's /dev/nvidia0, or a DRM render node such as Intel's or AMD's)."""
    return Path("/dev/nvidia0").exists() or any(Path("/dev/dri").glob("renderD*"))


class TestDeviceChoice:
    def test_names_are_classified(self) -> None:
        assert is_software("llvmpipe (LLVM 15.0.6, 256 bits)")
        assert not is_software("NVIDIA H100 80GB HBM3/PCIe/SSE2")

    def test_cpu_is_always_llvmpipe(self) -> None:
        choice = create_context("cpu")
        try:
            assert choice.software and not choice.fell_back
        finally:
            choice.ctx.release()

    def test_gpu_request_falls_back_to_the_cpu_where_there_is_none(self) -> None:
        gpu = _has_gpu()
        choice = create_context("gpu")
        try:
            assert choice.software is not gpu
            assert choice.fell_back is not gpu
            if not gpu:  # the documented fall-back: Mesa's software rasteriser
                assert "llvmpipe" in choice.gl_renderer.lower(), choice.gl_renderer
        finally:
            choice.ctx.release()

    def test_unknown_device_is_refused(self) -> None:
        with pytest.raises(OptionsError, match="auto, gpu or cpu"):
            create_context("tpu")  # type: ignore[arg-type]

    @pytest.mark.parametrize("device", ["gpu", "cpu"])
    def test_glasses_render_on_the_chosen_device(self, shared_data: Path, device: str) -> None:
        """The same real photo gets glasses whichever device the renderer ends up on."""
        image = cv2.imread(str(shared_data / "faces" / "photos" / "obama.jpg"))
        with FaceTracker() as tracker:
            face = tracker.process(image)[0]
        camera = Camera(image.shape[1], image.shape[0])
        product = GlassesCatalog.load().get("REC-M")
        renderer = GlassesRenderer(RenderOptions(device=device))
        result = renderer.render(image, face, estimate_pose(face, camera), camera, product)
        assert renderer.device is not None
        if device == "cpu":
            assert renderer.device.software
        assert result.bbox is not None
        x0, y0, x1, y1 = result.bbox
        changed = cv2.absdiff(result.image[y0:y1, x0:x1], image[y0:y1, x0:x1]).mean()
        assert changed > 5.0
