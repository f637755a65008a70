"""The onnx landmark backend chosen by one setting: a real render, its provider reported."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.settings import Settings
from tests.service.harness import LiveServer, make_settings


@pytest.fixture(scope="module")
def onnx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # "auto": CUDA/TensorRT when present, else the CPU with one log line (CI has no GPU).
    settings: Settings = make_settings(
        tmp_path_factory.mktemp("onnx"), landmark_backend="onnx", onnx_providers="auto"
    )
    with LiveServer(settings) as server:
        yield server


def test_render_on_onnx_backend_reports_provider(
    onnx_server: LiveServer, shared_data: Path
) -> None:
    data = (shared_data / "faces" / "photos" / "obama.jpg").read_bytes()
    with onnx_server.client(onnx_server.kiosk_key) as c:
        r = c.post("/v1/tryon/render", content=data,
                   headers={"Content-Type": "image/jpeg"}, params={"sku": "REC-M"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("image/")
    with onnx_server.client() as c:
        ready = c.get("/readyz").json()
        text = c.get("/metrics").text
    assert ready["landmark_backend"] == "onnx"
    providers = ready["landmark_providers"]
    assert providers and all(p.endswith("ExecutionProvider") for p in providers), providers
    assert any(f'backend="onnx",device="{providers[0]}"' in ln for ln in text.splitlines()
               if ln.startswith("tryon_device_info{"))
