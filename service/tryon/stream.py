"""WS /v1/tryon/stream: live try-on, binary JPEG in, JPEG + JSON out; the connection loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import uuid
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, ValidationError
from starlette.websockets import WebSocketDisconnected

from service.access.credentials import api_key_from
from service.access.deps import KioskDep
from service.access.keys import Principal
from service.access.tickets import issue_ticket, redeem_ticket
from service.deps import RuntimeDep, SessionDep
from service.errors import AUTH_ERRORS, ServiceError, Unauthorized, error_responses
from service.runtime import Runtime
from service.touchpoints.events import Who
from service.touchpoints.sink import KEY_ID_FIELD
from service.tryon.stream_events import TryOnSession
from service.tryon.stream_frames import Outcome, StreamFrames
from service.tryon.stream_leases import stream_lease
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
REPLIES = ("frame", "region")  # ?reply=: whole composited frames (default) or the changed box
END_FLUSH_TIMEOUT_S = 10.0  # after "end", how long the last results may take to go out
# The client is gone: the first send or receive to notice raises WebSocketDisconnect, any
# later one (the other task: sender or loop) WebSocketDisconnected.
CLIENT_GONE = (WebSocketDisconnect, WebSocketDisconnected)


async def _refuse(ws: WebSocket, code: str, message: str, close_code: int, **extra: object) -> None:
    with contextlib.suppress(Exception):  # the client may be gone already
        await ws.send_text(error_message(code, message, **extra))
        await ws.close(close_code, message[:120])


class TicketOut(BaseModel):
    ticket: str = Field(description="Open the stream with ?ticket=<ticket>; single use.")
    expires_in: int = Field(description="Seconds it stays valid.")


@router.post(
    "/v1/tryon/stream-tickets",
    status_code=201,
    response_model=TicketOut,
    responses=error_responses(*AUTH_ERRORS),
    summary="A single-use ticket to open the stream (no key or token in the URL)",
)
def stream_ticket(rt: RuntimeDep, session: SessionDep, principal: KioskDep) -> TicketOut:
    ttl = rt.settings.stream_ticket_ttl_s
    return TicketOut(ticket=issue_ticket(session, principal, ttl), expires_in=ttl)


def _redeem(rt: Runtime, ticket: str) -> Principal:
    """The ticket's principal, spent (blocking); Unauthorized when unknown, used or expired."""
    with rt.sessions.begin() as session:
        principal = redeem_ticket(session, ticket)
    if principal is None or not principal.has("kiosk"):
        raise Unauthorized("unknown, used or expired stream ticket; get a new one")
    rt.auth.check_budgets(principal)
    return principal


async def _authenticate(ws: WebSocket, rt: Runtime) -> Principal | None:
    """A ?ticket= (browsers), else the X-API-Key / Authorization header or a first
    {"type":"auth","key"} message (other clients). Never a key in the URL: URLs get logged."""
    q = ws.query_params
    if "key" in q or "token" in q:
        hint = (
            "credentials in the URL are not accepted: get a ticket (POST "
            "/v1/tryon/stream-tickets) and open the stream with ?ticket=TICKET"
        )
        await _refuse(ws, "unauthorized", hint, CLOSE_POLICY)
        return None
    try:
        if q.get("ticket"):
            return await run_in_threadpool(_redeem, rt, q["ticket"])
        raw = api_key_from(ws.headers)
        if not raw:
            try:
                text = await asyncio.wait_for(ws.receive_text(), AUTH_TIMEOUT_S)
                msg = CONTROL.validate_json(text)
            except (TimeoutError, ValidationError, KeyError, WebSocketDisconnect):
                msg = None
            if not isinstance(msg, Auth):
                hint = 'send ?ticket=TICKET or a first message {"type":"auth","key":"KEY"}'
                await _refuse(ws, "unauthorized", hint, CLOSE_POLICY)
                return None
            raw = msg.key
        client = rt.auth.client_of(ws.client.host if ws.client else None, ws.headers)
        return await run_in_threadpool(rt.auth.authenticate, raw, "kiosk", client)
    except ServiceError as exc:
        await _refuse(ws, exc.code, exc.message, CLOSE_POLICY)
        return None


async def _identity(ws: WebSocket, principal: Principal) -> StreamIdentity | None:
    """The session's ids from the query; a bad one is refused before any event is lost.

    A session token's stream is its shopper's: anonymous_id is the token's shopper id, and
    another anonymous_id or any user_id is refused."""
    fields = {k: ws.query_params.get(k) or None for k in StreamIdentity.model_fields}
    try:
        ids = StreamIdentity.model_validate(fields)
    except ValidationError as exc:
        errs = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()][:5]
        await _refuse(ws, "bad_identity", "invalid session ids", CLOSE_POLICY, detail=errs)
        return None
    if principal.is_session:
        own = principal.shopper_id
        if ids.user_id is not None or ids.anonymous_id not in (None, own):
            msg = "a session token streams only as its own shopper (anonymous_id, no user_id)"
            await _refuse(ws, "forbidden_shopper", msg, CLOSE_POLICY)
            return None
        ids = ids.model_copy(update={"anonymous_id": own})
    return ids


@router.websocket("/v1/tryon/stream")
async def stream(ws: WebSocket, rt: RuntimeDep) -> None:
    await ws.accept()
    principal = await _authenticate(ws, rt)
    if principal is None:
        return
    ids = await _identity(ws, principal)
    if ids is None:
        return
    if ws.query_params.get("reply", "frame") not in REPLIES:
        msg = "reply must be 'frame' (whole composited frames) or 'region' (the changed box)"
        await _refuse(ws, "bad_reply", msg, CLOSE_POLICY)
        return
    if not rt.streams.acquire():
        rt.metrics.rejected_streams.inc()
        await ws_busy(ws, rt.streams.limit)
        return
    try:
        await _serve_leased(ws, rt, principal, ids)
    finally:
        rt.streams.release()


async def _serve_leased(
    ws: WebSocket, rt: Runtime, principal: Principal, ids: StreamIdentity
) -> None:
    """Serve the stream holding a lease on its key's or token's cap (every replica's)."""
    async with stream_lease(rt.stream_leases, principal.subject) as held:
        if not held:
            rt.metrics.rejected_streams.inc()
            await ws_too_many(ws, rt.stream_leases.cap)
            return
        rt.metrics.active_streams.inc()
        try:
            await StreamConnection(ws, rt, principal, ids).run()
        finally:
            rt.metrics.active_streams.dec()


async def ws_too_many(ws: WebSocket, limit: int) -> None:
    msg = f"this key or session already has {limit} streams open; close one first"
    with contextlib.suppress(Exception):
        await ws.send_text(error_message("too_many_streams", msg))
        await ws.close(CLOSE_TRY_AGAIN, msg[:120])


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
        self.principal = principal
        q = ws.query_params
        channel = q.get("channel") or ""
        if channel not in CHANNELS:  # an unknown channel would get every event rejected
            channel = "web" if principal.is_session else "kiosk"
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
            emit=self._emit,
            consent=q.get("consent", "").lower() in ("1", "true", "yes"),
            min_dwell_s=rt.settings.min_try_on_dwell_s,
        )
        self.frames = StreamFrames(rt, self.events, region=q.get("reply") == "region")

    def _emit(self, events: list[dict[str, Any]]) -> None:
        """The batcher's emit, each event marked with the stream's key (events.key_id)."""
        self.rt.event_batcher.emit([{**ev, KEY_ID_FIELD: self.principal.key_id} for ev in events])

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
        """Frames and controls until the client leaves or idles; True when it sent "end".

        Idle means no FRAME for stream_idle_timeout_s: pings and controls do not keep a
        stream (and its slot) alive."""
        settings = self.rt.settings
        loop = asyncio.get_running_loop()
        idle_s = settings.stream_idle_timeout_s
        last_frame = loop.time()
        while True:
            left = last_frame + idle_s - loop.time()
            try:
                if left <= 0:
                    raise TimeoutError
                msg = await asyncio.wait_for(self.ws.receive(), left)
            except TimeoutError:
                await self.ws.send_text(
                    error_message("idle", f"no frame for {idle_s:g} s; closing")
                )
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
                last_frame = loop.time()
                self.frames.offer(data)
            elif msg.get("text") is not None and not await self._control(msg["text"]):
                return True

    async def _key_watch(self) -> None:
        """Close the stream once its key is revoked (checked every stream_key_check_s): a
        leaked or abused key must not keep the streams it opened before the revocation."""
        every = self.rt.settings.stream_key_check_s
        while True:
            await asyncio.sleep(every)
            if await run_in_threadpool(self.rt.auth.revoked, self.principal):
                log.info("closing a stream of revoked key %s", self.principal.key_id)
                await _refuse(self.ws, "unauthorized",
                              "this stream's API key was revoked", CLOSE_POLICY)
                return

    async def run(self) -> None:
        await self.frames.open()
        sender = asyncio.create_task(self._sender())
        watch = asyncio.create_task(self._key_watch())
        try:
            # pid: the worker process serving this stream (python -m service runs several).
            ready = {"type": "ready", "session_id": self.session_id, "pid": os.getpid()}
            await self.ws.send_text(json.dumps(ready))
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
            watch.cancel()
            sender.cancel()
            for task in (watch, sender):
                with contextlib.suppress(BaseException):
                    await task
            stats = self.frames.slot.stats
            self.events.end(frames=stats.processed, dropped=stats.dropped)
            self.rt.event_batcher.emit([], flush=True)
            await self.frames.close()
