"""WS /v1/tryon/stream: live try-on; binary JPEG in, JPEG + JSON out, latest frame wins."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from starlette.websockets import WebSocketDisconnected

from service.api.tryon import fit_advice, pipeline_options
from service.auth import Principal, authenticate_sync
from service.errors import ServiceError
from service.stream_events import SessionIdentity, TryOnSession
from service.workers import LatestFrameSlot
from vision.errors import VisionError
from vision.landmarks import RunningMode
from vision.pipeline import TryOnPipeline, TryOnResult

router = APIRouter(tags=["try-on"])
log = logging.getLogger(__name__)

AUTH_TIMEOUT_S = 10.0
END_FLUSH_TIMEOUT_S = 10.0  # after "end", how long the last results may take to go out
CLOSE_POLICY = 1008  # bad or missing key
CLOSE_TRY_AGAIN = 1013  # at max_streams
CHANNELS = ("web", "kiosk", "app", "store_staff", "call_centre")
# The client is gone: the first send or receive to notice raises WebSocketDisconnect, any
# later one (the other task: sender or loop) WebSocketDisconnected.
CLIENT_GONE = (WebSocketDisconnect, WebSocketDisconnected)


# -- control messages (JSON text frames) ------------------------------------------------------
class SelectGlasses(BaseModel):
    type: Literal["select"]
    sku: str = Field(max_length=64)
    variant: str | None = Field(default=None, max_length=64)


class SelectShade(BaseModel):
    type: Literal["shade"]
    shade: str = Field(max_length=64)
    intensity: float = Field(default=1.0, ge=0.0, le=1.0)
    finish: Literal["matte", "satin", "gloss", "shimmer"] | None = None


class SetIntensity(BaseModel):
    type: Literal["intensity"]
    value: float = Field(ge=0.0, le=1.0)


class Simple(BaseModel):
    type: Literal["snapshot", "end", "clear", "ping"]


class Auth(BaseModel):
    type: Literal["auth"]
    key: str = Field(max_length=256)


# Touchpoint ids from the query, held to what an event may carry (the envelope's `Id` and
# `ShortStr`): a longer, blank or NUL id would get every event of the session rejected.
StreamId = Annotated[
    str | None, Field(default=None, max_length=128, pattern=r"^[^\x00]*[^\x00\s][^\x00]*$")
]
StoreId = Annotated[
    str | None, Field(default=None, max_length=64, pattern=r"^[^\x00]*[^\x00\s][^\x00]*$")
]


class StreamIdentity(BaseModel):
    anonymous_id: StreamId
    session_id: StreamId
    user_id: StreamId
    store_id: StoreId
    kiosk_id: StoreId


Control = Annotated[
    SelectGlasses | SelectShade | SetIntensity | Simple | Auth, Field(discriminator="type")
]
CONTROL = TypeAdapter(Control)


class StreamRegistry:
    """Counts this replica's open streams against max_streams (CPU is per replica)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self._lock = threading.Lock()

    def acquire(self) -> bool:
        with self._lock:
            if self.active >= self.limit:
                return False
            self.active += 1
            return True

    def release(self) -> None:
        with self._lock:
            self.active -= 1


def _error(code: str, message: str, **extra: Any) -> str:
    return json.dumps({"type": "error", "code": code, "message": message, **extra})


async def _authenticate(ws: WebSocket) -> Principal | None:
    """Key from ?key=, the X-API-Key / Authorization header, or a first {"type":"auth"}."""
    raw = ws.query_params.get("key") or ws.headers.get("x-api-key")
    auth = ws.headers.get("authorization", "")
    if not raw and auth.lower().startswith("bearer "):
        raw = auth[7:].strip()
    if not raw:
        try:
            text = await asyncio.wait_for(ws.receive_text(), AUTH_TIMEOUT_S)
            msg = CONTROL.validate_json(text)
        except (TimeoutError, ValidationError, KeyError, WebSocketDisconnect):
            msg = None
        if not isinstance(msg, Auth):
            with contextlib.suppress(Exception):
                await ws.send_text(
                    _error(
                        "unauthorized",
                        'send ?key=KEY or a first message {"type":"auth","key":"KEY"}',
                    )
                )
                await ws.close(CLOSE_POLICY, "missing API key")
            return None
        raw = msg.key
    try:
        return await run_in_threadpool(authenticate_sync, ws.app, raw, "kiosk")
    except ServiceError as exc:
        with contextlib.suppress(Exception):
            await ws.send_text(_error(exc.code, exc.message))
            await ws.close(CLOSE_POLICY, exc.message[:120])
        return None


async def _identity(ws: WebSocket) -> StreamIdentity | None:
    """The session's ids from the query; a bad one is refused before any event is lost."""
    fields = {k: ws.query_params.get(k) or None for k in StreamIdentity.model_fields}
    try:
        return StreamIdentity.model_validate(fields)
    except ValidationError as exc:
        errs = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()][:5]
        with contextlib.suppress(Exception):
            await ws.send_text(_error("bad_identity", "invalid session ids", detail=errs))
            await ws.close(CLOSE_POLICY, "invalid session ids")
        return None


@router.websocket("/v1/tryon/stream")
async def stream(ws: WebSocket) -> None:
    st = ws.app.state
    await ws.accept()
    principal = await _authenticate(ws)
    if principal is None:
        return
    ids = await _identity(ws)
    if ids is None:
        return
    if not st.streams.acquire():
        st.metrics.rejected_streams.inc()
        with contextlib.suppress(Exception):  # the client may be gone already
            await ws.send_text(_error("busy", f"{st.streams.limit} streams already active"))
            await ws.close(
                CLOSE_TRY_AGAIN, f"server at max_streams ({st.streams.limit}); retry later"
            )
        return
    st.metrics.active_streams.inc()
    try:
        await StreamSession(ws, principal, ids).run()
    finally:
        st.metrics.active_streams.dec()
        st.streams.release()


class StreamSession:
    """One connection: its pipeline (tracker + filters), frame slot and touchpoints."""

    def __init__(self, ws: WebSocket, principal: Principal, ids: StreamIdentity) -> None:
        self.ws = ws
        self.st = ws.app.state
        self.settings = self.st.settings
        q = ws.query_params
        channel = q.get("channel") or ""
        if channel not in CHANNELS:  # an unknown channel would get every event rejected
            channel = "web" if principal.is_demo else "kiosk"
        self.events = TryOnSession(
            SessionIdentity(
                anonymous_id=ids.anonymous_id or uuid.uuid4().hex,
                session_id=ids.session_id or uuid.uuid4().hex,
                channel=channel[:32],
                user_id=ids.user_id,
                store_id=ids.store_id,
                kiosk_id=ids.kiosk_id,
            ),
            emit=self.st.event_batcher.emit,
            consent=q.get("consent", "").lower() in ("1", "true", "yes"),
        )
        self.pipe: TryOnPipeline | None = None
        self.lock = threading.Lock()  # selection changes never interleave with a frame
        self.out: asyncio.Queue[tuple[int, TryOnResult | BaseException]] = asyncio.Queue()
        self.slot = LatestFrameSlot(self.st.pool, self._work, self._deliver, self._dropped)
        self.frame_id = 0
        self.last_sent = 0
        self.sent = 0
        self.results_dropped = 0  # processed, but the client read too slowly to get them

    # -- worker side ---------------------------------------------------------------------
    def _make_pipeline(self) -> TryOnPipeline:
        return TryOnPipeline(
            pipeline_options(self.settings, RunningMode.VIDEO),
            self.st.catalog,
            self.st.catalog.shades,
            renderers=self.st.renderers,
        )

    def _work(self, item: tuple[bytes, float], frame_id: int) -> TryOnResult:
        data, t_recv = item
        assert self.pipe is not None
        with self.lock:
            return self.pipe.process_bytes(data, t_s=t_recv)

    # -- loop side -----------------------------------------------------------------------
    def _deliver(self, frame_id: int, outcome: TryOnResult | BaseException) -> None:
        # The client reads slower than we produce: keep only the newest result.
        while self.out.qsize() >= 2:
            self.out.get_nowait()
            self.out.task_done()
            self._dropped(frame_id)
            self.results_dropped += 1
        self.out.put_nowait((frame_id, outcome))

    def _dropped(self, _frame_id: int) -> None:
        self.st.metrics.dropped_frames.inc()

    async def _sender(self) -> None:
        while True:
            frame_id, outcome = await self.out.get()
            try:
                await self._send(frame_id, outcome)
            except CLIENT_GONE:
                raise
            except Exception:
                # One bad result must not silence the stream: report it and carry on.
                log.exception("stream frame %s could not be sent", frame_id)
                self.st.metrics.errors.labels("send_failed").inc()
                with contextlib.suppress(Exception):
                    await self.ws.send_text(
                        _error("internal", "frame could not be sent", frame_id=frame_id)
                    )
            finally:
                self.out.task_done()

    async def _send(self, frame_id: int, outcome: TryOnResult | BaseException) -> None:
        if isinstance(outcome, BaseException):
            code = getattr(outcome, "code", "internal")
            self.st.metrics.errors.labels(code).inc()
            msg = (
                str(outcome)
                if isinstance(outcome, VisionError | ServiceError)
                else ("frame failed")
            )
            await self.ws.send_text(_error(code, msg, frame_id=frame_id))
            return
        self.st.metrics.observe(outcome.timings_ms, "stream")
        s = outcome.summary()
        self.events.frame(outcome.applied, s.get("measurements"))
        meta = {
            "type": "frame",
            "frame_id": frame_id,
            "faces": s["faces"],
            "applied": s["applied"],
            "selection": s["selection"],
            "timings_ms": s["timings_ms"],
            "pose": s["pose"],
            "measurements": s.get("measurements"),
            "fit": fit_advice(self.st.catalog, outcome),
            "dropped": self.slot.stats.dropped + self.results_dropped,
            "bytes": len(outcome.jpeg or b""),
        }
        self.last_sent = frame_id
        await self.ws.send_text(json.dumps(meta, default=float))
        await self.ws.send_bytes(outcome.jpeg or b"")
        self.sent += 1

    async def _control(self, text: str) -> bool:
        """Apply one control message; False when the client asked to end."""
        try:
            msg = CONTROL.validate_json(text)
        except ValidationError as exc:
            errs = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()][:5]
            await self.ws.send_text(_error("bad_control", "malformed control message", detail=errs))
            return True
        if isinstance(msg, Simple) and msg.type == "end":
            return False
        if isinstance(msg, Simple) and msg.type == "ping":
            await self.ws.send_text(json.dumps({"type": "pong"}))
            return True
        if isinstance(msg, Simple) and msg.type == "snapshot":
            self.events.snapshot(self.last_sent)
            await self.ws.send_text(json.dumps({"type": "snapshot", "frame_id": self.last_sent}))
            return True
        if isinstance(msg, Auth):
            return True  # already authenticated
        try:
            selection = await run_in_threadpool(self._apply, msg)
        except (VisionError, ServiceError) as exc:
            await self.ws.send_text(_error(getattr(exc, "code", "bad_control"), str(exc)))
            return True
        if selection.get("kind") != "none":
            self.events.select(selection)
        await self.ws.send_text(json.dumps({"type": "selected", "selection": selection}))
        return True

    def _apply(self, msg: BaseModel) -> dict[str, Any]:
        assert self.pipe is not None
        with self.lock:
            if isinstance(msg, SelectGlasses):
                sel = self.pipe.select_glasses(msg.sku, msg.variant)
            elif isinstance(msg, SelectShade):
                sel = self.pipe.select_shade(msg.shade, msg.intensity, msg.finish)
            elif isinstance(msg, SetIntensity):
                sel = self.pipe.set_intensity(msg.value)
            else:
                self.pipe.clear()
                sel = self.pipe.selection
            return sel.to_dict()

    async def _initial_selection(self) -> None:
        q = self.ws.query_params
        text = None
        if q.get("sku"):
            text = json.dumps({"type": "select", "sku": q["sku"], "variant": q.get("variant")})
        elif q.get("shade"):
            text = json.dumps(
                {
                    "type": "shade",
                    "shade": q["shade"],
                    "intensity": q.get("intensity", 1.0),  # validated below
                    "finish": q.get("finish"),
                }
            )
        if text:
            await self._control(text)

    async def _results_sent(self, sender: asyncio.Task[None]) -> bool:
        """Let the last results go out first; False when the client has stopped reading."""
        if not sender.done():
            try:
                await asyncio.wait_for(self.out.join(), END_FLUSH_TIMEOUT_S)
            except TimeoutError:  # no summary then: the connection just closes
                return False
        return True

    async def run(self) -> None:
        ws = self.ws
        self.pipe = await self.st.pool.submit_async(self._make_pipeline)
        sender = asyncio.create_task(self._sender())
        ended_by_client = False
        try:
            await ws.send_text(
                json.dumps({"type": "ready", "session_id": self.events.identity.session_id})
            )
            await self._initial_selection()
            while True:
                try:
                    msg = await asyncio.wait_for(ws.receive(), self.settings.stream_idle_timeout_s)
                except TimeoutError:
                    await ws.send_text(_error("idle", "no message for too long; closing"))
                    await ws.close(1000, "idle")
                    break
                if msg["type"] == "websocket.disconnect":
                    break
                if msg.get("bytes") is not None:
                    data = msg["bytes"]
                    if len(data) > self.settings.max_stream_frame_bytes:
                        await ws.send_text(
                            _error(
                                "payload_too_large",
                                f"frame is {len(data)} bytes; limit "
                                f"{self.settings.max_stream_frame_bytes}",
                            )
                        )
                        continue
                    self.frame_id += 1
                    self.slot.offer(self.frame_id, (data, time.perf_counter()))
                elif msg.get("text") is not None and not await self._control(msg["text"]):
                    ended_by_client = True
                    break
            await self.slot.close()
            if ended_by_client and await self._results_sent(sender):
                await ws.send_text(
                    json.dumps(
                        {
                            "type": "end",
                            "frames_received": self.slot.stats.received,
                            "frames_processed": self.slot.stats.processed,
                            "frames_sent": self.sent,
                            "dropped": self.slot.stats.dropped,
                            "results_dropped": self.results_dropped,
                            "errors": self.slot.stats.errors,
                        }
                    )
                )
                await ws.close(1000, "session ended")
        except CLIENT_GONE:
            pass
        finally:
            await self.slot.close()
            sender.cancel()
            with contextlib.suppress(BaseException):
                await sender
            self.events.end(frames=self.slot.stats.processed, dropped=self.slot.stats.dropped)
            self.st.event_batcher.emit([], flush=True)
            pipe, self.pipe = self.pipe, None
            if pipe is not None:
                await self.st.pool.submit_async(pipe.close)
