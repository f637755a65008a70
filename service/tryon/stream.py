"""WS /v1/tryon/stream: live try-on, binary JPEG in, JPEG + JSON out; the connection loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnected

from service.access.credentials import api_key_from
from service.access.keys import Principal
from service.deps import RuntimeDep
from service.errors import ServiceError
from service.runtime import Runtime
from service.touchpoints.events import Who
from service.tryon.stream_events import TryOnSession
from service.tryon.stream_frames import Outcome, StreamFrames
from service.tryon.stream_protocol import (
    CHANNELS,
    CLOSE_POLICY,
    CLOSE_TRY_AGAIN,
    CONTROL,
    Auth,
    Simple,
    StreamIdentity,
    error_message,
)
from vision.errors import VisionError

router = APIRouter(tags=["try-on"])
log = logging.getLogger(__name__)

AUTH_TIMEOUT_S = 10.0
END_FLUSH_TIMEOUT_S = 10.0  # after "end", how long the last results may take to go out
# The client is gone: the first send or receive to notice raises WebSocketDisconnect, any
# later one (the other task: sender or loop) WebSocketDisconnected.
CLIENT_GONE = (WebSocketDisconnect, WebSocketDisconnected)


async def _refuse(ws: WebSocket, code: str, message: str, close_code: int, **extra: object) -> None:
    with contextlib.suppress(Exception):  # the client may be gone already
        await ws.send_text(error_message(code, message, **extra))
        await ws.close(close_code, message[:120])


async def _authenticate(ws: WebSocket, rt: Runtime) -> Principal | None:
    """Key from the X-API-Key / Authorization header, ?key=, or a first {"type":"auth"}."""
    raw = api_key_from(ws.headers, fallback=ws.query_params.get("key"))
    if not raw:
        try:
            msg = CONTROL.validate_json(await asyncio.wait_for(ws.receive_text(), AUTH_TIMEOUT_S))
        except (TimeoutError, ValidationError, KeyError, WebSocketDisconnect):
            msg = None
        if not isinstance(msg, Auth):
            hint = 'send ?key=KEY or a first message {"type":"auth","key":"KEY"}'
            await _refuse(ws, "unauthorized", hint, CLOSE_POLICY)
            return None
        raw = msg.key
    try:
        return await run_in_threadpool(rt.auth.authenticate, raw, "kiosk")
    except ServiceError as exc:
        await _refuse(ws, exc.code, exc.message, CLOSE_POLICY)
        return None


async def _identity(ws: WebSocket) -> StreamIdentity | None:
    """The session's ids from the query; a bad one is refused before any event is lost."""
    fields = {k: ws.query_params.get(k) or None for k in StreamIdentity.model_fields}
    try:
        return StreamIdentity.model_validate(fields)
    except ValidationError as exc:
        errs = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()][:5]
        await _refuse(ws, "bad_identity", "invalid session ids", CLOSE_POLICY, detail=errs)
        return None


@router.websocket("/v1/tryon/stream")
async def stream(ws: WebSocket, rt: RuntimeDep) -> None:
    await ws.accept()
    principal = await _authenticate(ws, rt)
    if principal is None:
        return
    ids = await _identity(ws)
    if ids is None:
        return
    if not rt.streams.acquire():
        rt.metrics.rejected_streams.inc()
        limit = rt.streams.limit
        await ws_busy(ws, limit)
        return
    rt.metrics.active_streams.inc()
    try:
        await StreamConnection(ws, rt, principal, ids).run()
    finally:
        rt.metrics.active_streams.dec()
        rt.streams.release()


async def ws_busy(ws: WebSocket, limit: int) -> None:
    with contextlib.suppress(Exception):
        await ws.send_text(error_message("busy", f"{limit} streams already active"))
        await ws.close(CLOSE_TRY_AGAIN, f"server at max_streams ({limit}); retry later")


class StreamConnection:
    """One connection's loop: controls in, frames to StreamFrames, results out, the end."""

    def __init__(
        self, ws: WebSocket, rt: Runtime, principal: Principal, ids: StreamIdentity
    ) -> None:
        self.ws = ws
        self.rt = rt
        q = ws.query_params
        channel = q.get("channel") or ""
        if channel not in CHANNELS:  # an unknown channel would get every event rejected
            channel = "web" if principal.is_demo else "kiosk"
        self.session_id = ids.session_id or uuid.uuid4().hex
        self.events = TryOnSession(
            Who(
                anonymous_id=ids.anonymous_id or uuid.uuid4().hex,
                session_id=self.session_id,
                channel=channel,
                user_id=ids.user_id,
                store_id=ids.store_id,
                kiosk_id=ids.kiosk_id,
            ),
            emit=rt.event_batcher.emit,
            consent=q.get("consent", "").lower() in ("1", "true", "yes"),
        )
        self.frames = StreamFrames(rt, self.events)

    async def _sender(self) -> None:
        while True:
            frame_id, outcome = await self.frames.results.get()
            try:
                await self._send(frame_id, outcome)
            except CLIENT_GONE:
                raise
            except Exception:
                # One bad result must not silence the stream: report it and carry on.
                log.exception("stream frame %s could not be sent", frame_id)
                self.rt.metrics.errors.labels("send_failed").inc()
                with contextlib.suppress(Exception):
                    await self.ws.send_text(
                        error_message("internal", "frame could not be sent", frame_id=frame_id)
                    )
            finally:
                self.frames.results.task_done()

    async def _send(self, frame_id: int, outcome: Outcome) -> None:
        if isinstance(outcome, BaseException):
            code = getattr(outcome, "code", "internal")
            self.rt.metrics.errors.labels(code).inc()
            typed = isinstance(outcome, VisionError | ServiceError)
            msg = str(outcome) if typed else "frame failed"
            await self.ws.send_text(error_message(code, msg, frame_id=frame_id))
            return
        meta = self.frames.frame_message(frame_id, outcome)
        self.frames.last_sent = frame_id
        await self.ws.send_text(json.dumps(meta, default=float))
        await self.ws.send_bytes(outcome.jpeg or b"")
        self.frames.sent += 1

    async def _control(self, text: str) -> bool:
        """Apply one control message; False when the client asked to end."""
        try:
            msg = CONTROL.validate_json(text)
        except ValidationError as exc:
            errs = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()][:5]
            await self.ws.send_text(
                error_message("bad_control", "malformed control message", detail=errs)
            )
            return True
        if isinstance(msg, Auth):
            return True  # already authenticated
        if isinstance(msg, Simple) and msg.type == "end":
            return False
        if isinstance(msg, Simple) and msg.type == "ping":
            await self.ws.send_text(json.dumps({"type": "pong"}))
            return True
        if isinstance(msg, Simple) and msg.type == "snapshot":
            last = self.frames.last_sent
            self.events.snapshot(last)
            await self.ws.send_text(json.dumps({"type": "snapshot", "frame_id": last}))
            return True
        try:
            selection = await run_in_threadpool(self.frames.apply, msg)
        except (VisionError, ServiceError) as exc:
            await self.ws.send_text(error_message(getattr(exc, "code", "bad_control"), str(exc)))
            return True
        if selection.get("kind") != "none":
            self.events.select(selection)
        await self.ws.send_text(json.dumps({"type": "selected", "selection": selection}))
        return True

    async def _initial_selection(self) -> None:
        q = self.ws.query_params
        text = None
        if q.get("sku"):
            text = json.dumps({"type": "select", "sku": q["sku"], "variant": q.get("variant")})
        elif q.get("shade"):
            intensity = q.get("intensity", 1.0)  # validated with the message
            text = json.dumps(
                {
                    "type": "shade",
                    "shade": q["shade"],
                    "intensity": intensity,
                    "finish": q.get("finish"),
                }
            )
        if text:
            await self._control(text)

    async def _results_sent(self, sender: asyncio.Task[None]) -> bool:
        """Let the last results go out first; False when the client has stopped reading."""
        if not sender.done():
            try:
                await asyncio.wait_for(self.frames.results.join(), END_FLUSH_TIMEOUT_S)
            except TimeoutError:  # no summary then: the connection just closes
                return False
        return True

    async def _receive_loop(self) -> bool:
        """Frames and controls until the client leaves or idles; True when it sent "end"."""
        settings = self.rt.settings
        while True:
            try:
                msg = await asyncio.wait_for(self.ws.receive(), settings.stream_idle_timeout_s)
            except TimeoutError:
                await self.ws.send_text(error_message("idle", "no message for too long; closing"))
                await self.ws.close(1000, "idle")
                return False
            if msg["type"] == "websocket.disconnect":
                return False
            data = msg.get("bytes")
            if data is not None:
                if len(data) > settings.max_stream_frame_bytes:
                    limit = settings.max_stream_frame_bytes
                    await self.ws.send_text(
                        error_message(
                            "payload_too_large", f"frame is {len(data)} bytes; limit {limit}"
                        )
                    )
                    continue
                self.frames.offer(data)
            elif msg.get("text") is not None and not await self._control(msg["text"]):
                return True

    async def run(self) -> None:
        await self.frames.open()
        sender = asyncio.create_task(self._sender())
        try:
            await self.ws.send_text(json.dumps({"type": "ready", "session_id": self.session_id}))
            await self._initial_selection()
            ended_by_client = await self._receive_loop()
            await self.frames.slot.close()
            if ended_by_client and await self._results_sent(sender):
                await self.ws.send_text(json.dumps(self.frames.summary()))
                await self.ws.close(1000, "session ended")
        except CLIENT_GONE:
            pass
        finally:
            await self.frames.slot.close()
            sender.cancel()
            with contextlib.suppress(BaseException):
                await sender
            stats = self.frames.slot.stats
            self.events.end(frames=stats.processed, dropped=stats.dropped)
            self.rt.event_batcher.emit([], flush=True)
            await self.frames.close()
