"""GET /metrics and /readyz on a real server after a real render."""

from __future__ import annotations

from pathlib import Path

from tests.service.harness import LiveServer


class TestOps:
    def test_metrics_and_readyz(self, live_server: LiveServer, shared_data: Path) -> None:
        data = (shared_data / "faces" / "photos" / "astronaut.png").read_bytes()
        with live_server.client(live_server.kiosk_key) as c:
            r = c.post("/v1/tryon/render", content=data,
                       headers={"Content-Type": "image/png"}, params={"sku": "REC-M"})
        assert r.status_code == 200
        with live_server.client() as c:
            text = c.get("/metrics").text
            ready = c.get("/readyz")
        assert 'tryon_frame_stage_seconds_bucket{le="0.004",path="render",stage="landmarks"}' \
            in text or 'stage="landmarks"' in text
        assert "tryon_active_streams" in text and "tryon_dropped_frames_total" in text
        count = [ln for ln in text.splitlines()
                 if ln.startswith('tryon_frames_total{path="render"}')]
        assert count and float(count[0].split()[-1]) >= 1
        assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"
        # A worker has drawn glasses, so it reports its GL device (llvmpipe on a CPU machine).
        assert ready.json()["render_devices"]
        # The same devices in /metrics, for dashboards (issue 13: provider "shown in /metrics").
        info = [ln for ln in text.splitlines() if ln.startswith("tryon_device_info{")]
        assert any('stage="landmarks"' in ln and 'backend="mediapipe"' in ln for ln in info)
        gl = ready.json()["render_devices"][0]
        assert any('stage="render"' in ln and f'device="{gl}"' in ln for ln in info), info
