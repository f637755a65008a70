"""Catalog endpoints through real HTTP: listing, filters, GLB download, shades, admin upload."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from service.settings import Settings
from tests.service.harness import (
    ADMIN_KEY,
    DEMO_KEY,
    ROOT,
    LiveServer,
    fresh_database,
    make_settings,
)
from vision.catalog import validate_glb
from vision.measure import frame_fits

MAX_GLB = 160_000  # above the bundled rectangle frames (~134 kB), below the wayfarer (~182 kB)


@pytest.fixture(scope="module")
def server_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("products"), max_glb_bytes=MAX_GLB)


def upload_meta(sku: str, **over: Any) -> dict[str, Any]:
    """Metadata for the bundled REC-M model re-uploaded under a new sku."""
    meta = {
        "sku": sku, "name": "Uploaded Rectangle", "style": "rectangular",
        "variants": [{"name": "teal", "frame_color": "#0f7a7a", "lens_tint": [0.9, 0.9, 1, 0.2]}],
        "price": 99.0, "currency": "EUR", "lens_width_mm": 53, "bridge_mm": 18,
        "temple_mm": 140, "frame_width_mm": 137.3,
    }
    meta.update(over)
    return meta


def upload(live_server: LiveServer, key: str, meta: dict[str, Any], glb: bytes) -> Any:
    with live_server.client(key) as c:
        return c.post("/v1/products", data={"metadata": json.dumps(meta)},
                      files={"model": ("frame.glb", glb, "model/gltf-binary")})


REC_M = ROOT / "assets" / "models3d" / "frames" / "REC-M.glb"


class TestListing:
    def test_all_products_and_type_filter(self, live_server: LiveServer) -> None:
        with live_server.client(live_server.kiosk_key) as c:
            everything = c.get("/v1/products").json()
            glasses = c.get("/v1/products", params={"type": "glasses"}).json()["items"]
            lipstick = c.get("/v1/products", params={"type": "lipstick"}).json()["items"]
        assert len(glasses) >= 8 and len(lipstick) >= 12
        assert everything["count"] == len(glasses) + len(lipstick)
        assert {p["type"] for p in glasses} == {"glasses"}
        assert all(p["model_url"] == f"/v1/products/{p['sku']}/model.glb" for p in glasses)
        assert all("glb" not in p for p in glasses)  # no server file names leak
        assert all(p["sku"] == p["id"] for p in lipstick)

    def test_style_and_face_width_filters(self, live_server: LiveServer) -> None:
        with live_server.client(live_server.kiosk_key) as c:
            rect = c.get("/v1/products", params={"style": "Rectangular"}).json()["items"]
            fit = c.get("/v1/products", params={"face_width_mm": 150}).json()["items"]
            bad = c.get("/v1/products", params={"face_width_mm": 5})
        assert rect and {p["style"] for p in rect} == {"rectangular"}
        assert fit, "a 150 mm face should fit some bundled frames"
        assert all(frame_fits(p["frame_width_mm"], 150) for p in fit)
        with live_server.client(live_server.kiosk_key) as c:
            all_glasses = c.get("/v1/products", params={"type": "glasses"}).json()["items"]
        assert len(fit) < len(all_glasses)  # the filter filters
        assert bad.status_code == 422

    def test_get_one_and_unknown(self, live_server: LiveServer) -> None:
        with live_server.client(live_server.kiosk_key) as c:
            one = c.get("/v1/products/REC-M").json()
            missing = c.get("/v1/products/NOPE-1")
        assert one["sku"] == "REC-M" and one["size"] == "53-18-140"
        assert missing.status_code == 404 and "NOPE-1" in missing.json()["error"]["message"]

    def test_model_glb_is_a_valid_mm_model(self, live_server: LiveServer) -> None:
        with live_server.client(live_server.kiosk_key) as c:
            r = c.get("/v1/products/REC-M/model.glb")
            assert c.get("/v1/products/NOPE-1/model.glb").status_code == 404
        assert r.headers["content-type"] == "model/gltf-binary"
        assert r.content[:4] == b"glTF"
        assert r.content == REC_M.read_bytes()
        validate_glb(r.content)

    def test_shades(self, live_server: LiveServer) -> None:
        with live_server.client(live_server.kiosk_key) as c:
            shades = c.get("/v1/shades").json()["items"]
        assert len(shades) >= 12
        assert {s["finish"] for s in shades} == {"matte", "satin", "gloss", "shimmer"}
        assert all(s["hex"].startswith("#") and s["id"] and s["name"] for s in shades)


class TestUpload:
    def test_admin_upload_is_served_and_rendered(self, live_server: LiveServer,
                                                 shared_data: Path) -> None:
        glb = REC_M.read_bytes()
        r = upload(live_server, ADMIN_KEY, upload_meta("UP-TEAL-1"), glb)
        assert r.status_code == 201, r.text
        assert r.json()["size_band"] == "M" and r.json()["source"] == "uploaded"
        with live_server.client(live_server.kiosk_key) as c:
            listed = {p["sku"] for p in c.get("/v1/products").json()["items"]}
            one = c.get("/v1/products/UP-TEAL-1").json()
            model = c.get("/v1/products/UP-TEAL-1/model.glb").content
            photo = (shared_data / "faces" / "photos" / "astronaut.png").read_bytes()
            rendered = c.post("/v1/tryon/render", content=photo,
                              headers={"Content-Type": "image/png"},
                              params={"sku": "UP-TEAL-1", "variant": "teal"})
        assert "UP-TEAL-1" in listed and one["variants"][0]["name"] == "teal"
        assert model == glb
        assert rendered.status_code == 200 and rendered.headers["x-tryon-applied"] == "true"
        assert upload(live_server, ADMIN_KEY, upload_meta("UP-TEAL-1"), glb).status_code == 409
        assert upload(live_server, ADMIN_KEY, upload_meta("REC-M"), glb).status_code == 409

    def test_only_admin_may_upload(self, live_server: LiveServer) -> None:
        kiosk = live_server.create_key(["kiosk"])["key"]
        r = upload(live_server, kiosk, upload_meta("UP-KIOSK"), REC_M.read_bytes())
        assert r.status_code == 403
        assert upload(live_server, DEMO_KEY, upload_meta("UP-DEMO"), b"glTF").status_code == 403

    @pytest.mark.parametrize(
        ("glb", "meta", "status", "words"),
        [
            (b"glTF" + b"\x00" * 200, {}, 400, "model rejected"),
            (b"not a model at all", {}, 400, "model rejected"),
            ("REC-M", {"frame_width_mm": 120.0}, 400, "GLB front"),
            ("REC-M", {"lens_width_mm": 5}, 400, "metadata is invalid"),
            ("JZ-WAYFARER", {"frame_width_mm": 140.0}, 413, "limit"),
        ],
        ids=["truncated", "garbage", "width-mismatch", "bad-metadata", "too-big"],
    )
    def test_bad_uploads_say_why(self, live_server: LiveServer, glb: bytes | str,
                                 meta: dict[str, Any], status: int, words: str) -> None:
        data = glb if isinstance(glb, bytes) else (
            ROOT / "assets" / "models3d" / "frames" / f"{glb}.glb").read_bytes()
        r = upload(live_server, ADMIN_KEY, upload_meta("UP-BAD", **meta), data)
        assert r.status_code == status, r.text
        assert words in r.json()["error"]["message"]
        with live_server.client(live_server.kiosk_key) as c:
            assert c.get("/v1/products/UP-BAD").status_code == 404

    def test_metadata_json_that_python_parses_but_json_cannot_carry(
        self, live_server: LiveServer
    ) -> None:
        # NaN (echoed in the error detail, which JSON cannot hold) and nesting past the
        # parser's recursion limit were both 500s.
        nan = json.dumps(upload_meta("UP-NAN", price=float("nan")))
        for raw in (nan, "[" * 5000 + "]" * 5000):
            with live_server.client(ADMIN_KEY) as c:
                r = c.post("/v1/products", data={"metadata": raw},
                           files={"model": ("frame.glb", REC_M.read_bytes(), "model/gltf-binary")})
            assert r.status_code == 400, r.text
            assert "metadata is invalid" in r.json()["error"]["message"]

    def test_upload_needs_multipart(self, live_server: LiveServer) -> None:
        with live_server.client(ADMIN_KEY) as c:
            r = c.post("/v1/products", json=upload_meta("UP-JSON"))
        assert r.status_code == 415


@pytest.mark.postgres
def test_skus_no_upload_could_have_are_unknown_on_postgresql(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # PostgreSQL refuses NUL in text: looking such a sku up was a 500 over HTTP and, sent as
    # a stream control, an exception that killed the stream.
    from websockets.sync.client import connect

    tmp = tmp_path_factory.mktemp("products-pg")
    with fresh_database("postgres", tmp) as url, LiveServer(
        make_settings(tmp, database_url=url)
    ) as srv:
        with srv.client(srv.kiosk_key) as c:
            for sku in ("REC-M%00", "x" * 65):
                for path in (f"/v1/products/{sku}", f"/v1/products/{sku}/model.glb"):
                    r = c.get(path)
                    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        with connect(f"{srv.ws_url}/v1/tryon/stream?{srv.ticket()}", open_timeout=30) as ws:
            assert json.loads(ws.recv(timeout=30))["type"] == "ready"
            ws.send(json.dumps({"type": "select", "sku": "REC-M\x00"}))
            assert json.loads(ws.recv(timeout=30))["code"] == "catalog"
            ws.send(json.dumps({"type": "ping"}))  # the stream carries on
            assert json.loads(ws.recv(timeout=30))["type"] == "pong"
