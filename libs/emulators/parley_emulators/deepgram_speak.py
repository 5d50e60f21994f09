"""Emulator of Deepgram Aura text-to-speech, ``/v1/speak``, over REST and WebSocket.

- REST ``POST /v1/speak?model&encoding=linear16&sample_rate&container=none[&speed]`` with
  ``{"text"}`` -> chunked linear16 at that rate.
- WebSocket ``GET /v1/speak?model&encoding=linear16&sample_rate[&speed]``: ``Metadata``
  first; ``{"type": "Speak", "text"}`` queues text; ``Flush`` speaks it (binary frames, then
  ``{"type": "Flushed", "sequence_id"}``); ``Clear`` drops queued text and audio not yet sent
  (then ``Cleared``); ``Close`` closes with 1000.
- Auth ``Authorization: Token <key>``; REST errors ``{"err_code", "err_msg", "request_id"}``;
  a WebSocket with a bad key is refused with 401.

Fault kinds: ``http`` (REST status/body/headers; a refused WebSocket handshake),
``malformed`` (REST: a JSON body instead of audio; WS: a text frame that is not JSON),
``drop`` (REST: cut mid-body; WS: close 1011 after the first audio frame).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from parley_emulators.base import EmulatorState, Fault, Moment, Recorded, starlette_app
from parley_emulators.speech import chunks, paced, record_json, tone
from parley_emulators.spoken import record

__all__ = ["LINEAR16_RATES", "app", "error_body", "routes"]

LINEAR16_RATES = (8000, 16000, 24000, 32000, 48000)


def error_body(code: str, message: str) -> dict[str, Any]:
    """A Deepgram REST error body."""
    return {"err_code": code, "err_msg": message, "request_id": str(uuid.uuid4())}


def _params(query: Any) -> tuple[str, int, float] | str:
    """(model, rate, speed) of a valid query, or what is wrong with it."""
    model = query.get("model", "aura-asteria-en")
    if not model.startswith("aura-"):
        return f"unknown model {model}"
    if query.get("encoding", "linear16") != "linear16":
        return "the emulator serves linear16 only"
    try:
        rate = int(query.get("sample_rate", "24000"))
        speed = float(query.get("speed", "1.0"))
    except ValueError:
        return "sample_rate and speed must be numbers"
    if rate not in LINEAR16_RATES or not 0.7 <= speed <= 1.5:
        return "unsupported sample_rate or speed"
    return model, rate, speed


def routes(state: EmulatorState) -> list[BaseRoute]:
    """The REST and WebSocket ``/v1/speak`` routes."""

    def authorised(headers: Any) -> bool:
        return bool(headers.get("authorization") == f"Token {state.api_key}")

    async def speak_rest(request: Request) -> Response:
        recorded = await record_json(state, request)
        if not authorised(request.headers):
            return JSONResponse(error_body("INVALID_AUTH", "Invalid credentials."), 401)
        fault = state.next_fault()
        if fault is not None and fault.kind == "http":
            return JSONResponse(fault.body, status_code=fault.status, headers=fault.headers)
        params = _params(request.query_params)
        text = recorded.body.get("text") if isinstance(recorded.body, dict) else None
        if isinstance(params, str) or not isinstance(text, str) or not text:
            problem = params if isinstance(params, str) else "text is required"
            return JSONResponse(error_body("INVALID_QUERY_PARAMETER", problem), 400)
        if fault is not None and fault.kind == "malformed":
            return JSONResponse({"not": "audio"})
        _, rate, speed = params
        drop_after = 2 if fault is not None and fault.kind == "drop" else None
        return StreamingResponse(
            paced(state, recorded, chunks(tone(text, rate, speed), rate), drop_after=drop_after),
            media_type="audio/l16",
        )

    async def speak_ws(websocket: WebSocket) -> None:
        recorded = record(state, websocket)
        fault = state.next_fault()
        if fault is not None and fault.kind == "http":
            response = JSONResponse(fault.body, status_code=fault.status, headers=fault.headers)
            await websocket.send_denial_response(response)
            return
        if not authorised(websocket.headers):
            await websocket.send_denial_response(Response(status_code=401))
            return
        params = _params(websocket.query_params)
        if isinstance(params, str):
            await websocket.send_denial_response(JSONResponse(error_body("BAD", params), 400))
            return
        await websocket.accept()
        session = _SpeakSocket(state, websocket, recorded, params, fault)
        try:
            await session.serve()
        except (WebSocketDisconnect, OSError):
            state.mark_closed(recorded)
        else:
            if recorded.closed_at is None:
                state.mark_closed(recorded)

    return [
        Route("/v1/speak", speak_rest, methods=["POST"]),
        WebSocketRoute("/v1/speak", speak_ws),
    ]


class _SpeakSocket:
    """One Aura WebSocket session: a receiver, and a sender that Clear can interrupt."""

    def __init__(
        self,
        state: EmulatorState,
        websocket: WebSocket,
        recorded: Recorded,
        params: tuple[str, int, float],
        fault: Fault | None,
    ) -> None:
        self.state = state
        self.ws = websocket
        self.recorded = recorded
        self.model, self.rate, self.speed = params
        self.fault = fault
        self.text = ""
        self.sequence = 0
        self.flushes: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
        self.sender: asyncio.Task[None] | None = None

    async def serve(self) -> None:
        recorded = self.recorded
        metadata = {
            "type": "Metadata",
            "request_id": str(uuid.uuid4()),
            "model_name": self.model,
            "model_version": "emulated",
            "model_uuid": str(uuid.uuid4()),
        }
        await self.ws.send_text(json.dumps(metadata))
        self._start_sender()
        try:
            while True:
                message = json.loads(await self.ws.receive_text())
                recorded.messages.append(message)
                kind = message.get("type")
                if kind == "Speak":
                    self.text += str(message.get("text", ""))
                elif kind == "Flush":
                    recorded.mark(Moment.FLUSH_IN)
                    self.flushes.put_nowait((self.sequence, self.text))
                    self.sequence += 1
                    self.text = ""
                elif kind == "Clear":
                    await self._clear()
                elif kind == "Close":
                    await self._stop_sender()
                    await self.ws.close(1000)
                    self.state.mark_closed(recorded)
                    return
        finally:
            await self._stop_sender()

    async def _clear(self) -> None:
        await self._stop_sender()
        self.text = ""
        self.flushes = asyncio.Queue()
        await self.ws.send_text(json.dumps({"type": "Cleared", "sequence_id": self.sequence}))
        self._start_sender()

    def _start_sender(self) -> None:
        self.sender = asyncio.create_task(self._send_audio())

    async def _stop_sender(self) -> None:
        if self.sender is not None:
            self.sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, OSError):
                await self.sender
            self.sender = None

    async def _send_audio(self) -> None:
        while True:
            sequence, text = await self.flushes.get()
            for piece in chunks(tone(text, self.rate, self.speed), self.rate):
                fault, self.fault = self.fault, None
                if fault is not None and fault.kind == "malformed":
                    await self.ws.send_text("{not json")
                await self.ws.send_bytes(piece)
                self.recorded.mark(Moment.FIRST_BYTE)
                if fault is not None and fault.kind == "drop":
                    await self.ws.close(1011, "internal error")
                    return
                await asyncio.sleep(self.state.stream_delay_s)
            await self.ws.send_text(json.dumps({"type": "Flushed", "sequence_id": sequence}))


def app(state: EmulatorState) -> Starlette:
    """An app serving the Aura emulator."""
    return starlette_app(routes(state))
