"""A bad-frame corpus through the real service: HTTP render/analyze and the WebSocket stream.

The server is a uvicorn subprocess (so its process can be watched: alive, RSS); the corpus is
made here (nothing is committed): giant sides in each allowed format, a padded JPEG header
declaring 32000x32000, other formats sent as image/jpeg, a CMYK JPEG, a 16-bit PNG, truncated
files and a body over the limit. Each must get a JSON 4xx with the right status (415 not
allow-listed, 413 too large, 422 undecodable) or a valid result, and the server must survive
with its memory bounded.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from PIL import Image
from websockets.sync.client import connect

from service.settings import Settings
from tests.service.harness import LiveServer, make_settings
from tests.vision.test_frame_corpus import (
    GIANT,
    _image,
    _jpeg_declaring,
    _pil,
    _png_declaring,
    _webp_declaring,
)

MAX_BODY = 2 * 1024 * 1024
RSS_BOUND_KB = 1_500 * 1024  # 1.5 GB: a single decoded bomb would be far beyond it
VALID = 200


def _real_jpeg(shared_data: Path) -> bytes:
    return (shared_data / "faces" / "photos" / "obama.jpg").read_bytes()


def corpus(real: bytes) -> list[tuple[str, bytes, set[int]]]:
    """(name, body sent as image/jpeg, acceptable statuses)."""
    items: list[tuple[str, bytes, set[int]]] = []
    for w, h in GIANT:
        items += [
            (f"jpeg_{w}x{h}", _jpeg_declaring(w, h), {413}),
            (f"png_{w}x{h}", _png_declaring(w, h), {413}),
            (f"webp_{w}x{h}", _webp_declaring(w, h, animated=False), {413}),
            (f"webp_anim_{w}x{h}", _webp_declaring(w, h, animated=True), {413}),
        ]
    bomb = _jpeg_declaring(32000, 32000)
    items.append(("jpeg_ff_padded_32000x32000", bomb[:2] + b"\xff" * 64 + bomb[2:], {413}))
    img = Image.fromarray(_image())
    for fmt in ("TIFF", "BMP", "GIF"):
        items.append((f"{fmt.lower()}_as_jpeg", _pil(img, fmt), {415}))
    # Valid images with an odd pixel layout: decoded (to BGR) or refused, never a crash.
    items.append(("cmyk_jpeg", _pil(img.convert("CMYK"), "JPEG"), {VALID, 415, 422}))
    face = cv2.imdecode(np.frombuffer(real, np.uint8), cv2.IMREAD_COLOR)
    small = cv2.resize(face, (face.shape[1] // 2, face.shape[0] // 2))
    png16 = cv2.imencode(".png", small.astype(np.uint16) * 257)[1].tobytes()
    items.append(("png_16bit", png16, {VALID, 415, 422}))
    items += [
        ("jpeg_truncated_half", real[: len(real) // 2], {VALID, 422}),
        ("jpeg_truncated_header", real[:40], {422}),
        ("png_truncated", png16[: len(png16) // 3], {422}),
        ("jpeg_soi_only", b"\xff\xd8", {422}),
        ("real_face", real, {VALID}),
    ]
    return items


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("hostile")
    settings: Settings = make_settings(tmp, max_body_bytes=MAX_BODY,
                                       max_stream_frame_bytes=MAX_BODY, worker_threads=1)
    with LiveServer(settings, process=True, log_path=tmp / "server.log") as s:
        yield s


@pytest.fixture(scope="module")
def key(server: LiveServer) -> str:
    return str(server.create_key(["kiosk"], rate_limit=0)["key"])


@pytest.fixture(scope="module")
def items(shared_data: Path) -> list[tuple[str, bytes, set[int]]]:
    return corpus(_real_jpeg(shared_data))


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _alive(server: LiveServer) -> None:
    assert server.proc is not None and server.proc.poll() is None, server.log()
    assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200


@pytest.mark.parametrize("path", ["/v1/tryon/render?sku=REC-M", "/v1/tryon/analyze"])
def test_http_corpus(server: LiveServer, key: str, items: list[tuple[str, bytes, set[int]]],
                     path: str) -> None:
    failures = []
    with server.client(key) as c:
        for name, body, ok in items:
            r = c.post(path, content=body, headers={"Content-Type": "image/jpeg"})
            if r.status_code not in ok:
                failures.append(f"{name}: {r.status_code} {r.text[:200]}")
                continue
            assert r.headers["x-content-type-options"] == "nosniff"
            if r.status_code == VALID:
                if "render" in path:
                    assert r.headers["content-type"] == "image/jpeg"
                    assert cv2.imdecode(np.frombuffer(r.content, np.uint8), 1) is not None
                else:
                    assert "faces" in r.json()
            else:
                err = r.json()["error"]
                assert err["code"] and err["message"], (name, err)
        # Over the body limit: 413 before anything is decoded.
        r = c.post(path, content=b"\xff\xd8\xff" + b"\0" * (MAX_BODY + 10),
                   headers={"Content-Type": "image/jpeg"})
        if r.status_code != 413 or r.json()["error"]["code"] != "payload_too_large":
            failures.append(f"too_large: {r.status_code} {r.text[:200]}")
    assert not failures, "\n".join(failures)
    _alive(server)


def _stream_outcome(recv: Callable[[], str | bytes]) -> dict[str, object]:
    """The next frame result or error for a sent frame (JSON; a frame's JPEG is read too)."""
    while True:
        msg = recv()
        assert isinstance(msg, str), "a binary message before its frame JSON"
        body = json.loads(msg)
        if body["type"] == "frame":
            image = recv()
            assert isinstance(image, bytes) and image[:2] == b"\xff\xd8"
            return dict(body)
        if body["type"] == "error":
            return dict(body)


STREAM_CODES = {413: {"frame_too_large", "payload_too_large"}, 415: {"unsupported_media_type"},
                422: {"bad_frame"}}


def test_stream_corpus(server: LiveServer, key: str,
                       items: list[tuple[str, bytes, set[int]]]) -> None:
    failures = []
    with connect(f"{server.ws_url}/v1/tryon/stream?sku=REC-M", max_size=8 * 1024 * 1024,
                 open_timeout=30, additional_headers={"X-API-Key": key}) as ws:
        assert json.loads(ws.recv(timeout=30))["type"] == "ready"

        def recv() -> str | bytes:
            return ws.recv(timeout=60)

        assert json.loads(recv())["type"] == "selected"
        for name, body, ok in [*items, ("too_large", b"\xff\xd8\xff" + b"\0" * MAX_BODY,
                                        {413})]:
            ws.send(body)  # one at a time: each gets its own answer
            out = _stream_outcome(recv)
            if out["type"] == "frame":
                good = VALID in ok
            else:
                good = any(out["code"] in STREAM_CODES[s] for s in ok if s != VALID)
            if not good:
                failures.append(f"{name}: {out}")
        # The stream is still usable afterwards.
        ws.send(items[-1][1])
        assert _stream_outcome(recv)["type"] == "frame"
    assert not failures, "\n".join(failures)
    _alive(server)


def test_server_memory_bounded_after_the_corpus(server: LiveServer, key: str,
                                               items: list[tuple[str, bytes, set[int]]]) -> None:
    assert server.proc is not None
    with server.client(key) as c:
        for _ in range(3):  # again: nothing accumulates per hostile request
            for _name, body, _ok in items:
                c.post("/v1/tryon/analyze", content=body, headers={"Content-Type": "image/jpeg"})
    _alive(server)
    rss = rss_kb(server.proc.pid)
    assert rss < RSS_BOUND_KB, f"server RSS {rss / 1024:.0f} MB after the corpus"


def test_corpus_is_what_it_claims() -> None:
    """The generators still make what the names say (a silent change would test nothing)."""
    from vision.frame_header import read_header

    for w, h in GIANT:
        assert (read_header(_jpeg_declaring(w, h)).width, read_header(_png_declaring(w, h)).height
                ) == (w, h)
    buf = io.BytesIO(_pil(Image.fromarray(_image()).convert("CMYK"), "JPEG"))
    assert Image.open(buf).mode == "CMYK"
