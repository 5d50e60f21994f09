"""Emulator of Deepgram speech-to-text, ``/v1/listen``: live over WebSocket, and pre-recorded.

- WebSocket ``GET /v1/listen?model&encoding=linear16&sample_rate&channels&interim_results
  &punctuate&smart_format&endpointing&language`` (booleans case-insensitive), auth
  ``Authorization: Token <key>`` (a bad key is refused on the upgrade with HTTP 401).
  Binary audio; after each chunk that completes a word, an interim ``Results``
  (``is_final: false``) of the words heard since the last final. ``{"type": "Finalize"}``
  answers with a final ``Results`` (``is_final``, ``speech_final``, ``from_finalize: true``)
  of the audio not yet final — nothing when there is none, as Deepgram does.
  ``{"type": "KeepAlive"}`` keeps a silent stream open; ``{"type": "CloseStream"}`` flushes,
  sends ``Metadata`` and closes with 1000. ``state.idle_timeout_s`` (10 s) without audio or
  KeepAlive closes with 1011 (NET-0001). ``state.final_every_s`` makes it finalise on its own
  every so much audio (its endpointing), so utterances arrive in several final pieces.
  ``language=multi`` reports ``languages`` on each alternative.
- ``POST /v1/listen?model...`` with the audio as the body (a WAV, or raw linear16 with
  ``encoding`` and ``sample_rate``): ``{"metadata", "results": {"channels": [...]}}``.
- Errors: ``{"err_code", "err_msg", "request_id"}``.

Fault kinds: ``http`` (the upgrade or the POST is refused with the fault's status),
``malformed`` (after the first audio chunk, a text frame that is not JSON), ``close`` (after
the first audio chunk, close with the fault's ``status`` as the code, e.g. 1008),
``drop`` (after the first audio chunk, the TCP connection is cut without a close frame).
``state.stream_delay_s`` delays the answer to Finalize.
"""

from __future__ import annotations

import asyncio
import io
import json
import uuid
import wave
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from parley_emulators.base import Fault, Moment, Recorded, starlette_app
from parley_emulators.spoken import (
    SpokenWord,
    SttEmulatorState,
    record,
    serve_socket,
    socket_fault,
)

__all__ = ["ListenState", "app", "error_body", "routes"]


@dataclass
class ListenState(SttEmulatorState):
    """The Deepgram emulator's state: what the audio says, plus its live-stream timers."""

    idle_timeout_s: float = 10.0
    final_every_s: float | None = None


def error_body(code: str, message: str) -> dict[str, Any]:
    """A Deepgram error body."""
    return {"err_code": code, "err_msg": message, "request_id": str(uuid.uuid4())}


def _flag(query: Any, name: str, default: bool = False) -> bool:
    value = query.get(name)
    return default if value is None else str(value).lower() == "true"


def _alternative(state: ListenState, words: list[SpokenWord], query: Any) -> dict[str, Any]:
    punctuated = _flag(query, "punctuate") or _flag(query, "smart_format")
    text = " ".join(w.punctuated if punctuated else w.plain for w in words)
    alternative: dict[str, Any] = {
        "transcript": text,
        "confidence": state.confidence if words else 0.0,
        "words": [
            {
                "word": w.plain,
                "start": w.start,
                "end": w.end,
                "confidence": state.confidence,
                "punctuated_word": w.punctuated,
            }
            for w in words
        ],
    }
    if query.get("language") == "multi":
        alternative["languages"] = [state.language] if words else []
    return alternative


def _query_problem(query: Any) -> str | None:
    if not query.get("model"):
        return "model is required"
    if query.get("encoding") not in (None, "linear16"):
        return "the emulator understands linear16 only"
    if query.get("encoding") == "linear16" and not query.get("sample_rate"):
        return "sample_rate is required with encoding"
    return None


class _ListenSocket:
    """One live ``/v1/listen`` session."""

    def __init__(
        self, state: ListenState, ws: WebSocket, recorded: Recorded, fault: Fault | None
    ) -> None:
        self.state = state
        self.ws = ws
        self.recorded = recorded
        self.query = ws.query_params
        self.fault = fault
        self.rate = int(self.query.get("sample_rate", "16000"))
        self.received = 0  # audio bytes
        self.final_s = 0.0  # audio finalised so far, seconds
        self.interim_words = 0
        self.request_id = str(uuid.uuid4())
        self.answers: list[asyncio.Task[None]] = []

    @property
    def audio_s(self) -> float:
        return self.received / (2 * self.rate)

    async def serve(self) -> None:
        try:
            await self._serve()
        finally:
            for answer in self.answers:
                answer.cancel()
            await asyncio.gather(*self.answers, return_exceptions=True)

    async def _serve(self) -> None:
        while True:
            try:
                message = await asyncio.wait_for(self.ws.receive(), self.state.idle_timeout_s)
            except TimeoutError:
                # NET-0001: no audio and no KeepAlive for too long.
                await self.ws.close(1011, "NET-0001: no audio received within the timeout")
                return
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                await self._audio(message["bytes"])
                continue
            text = message.get("text") or ""
            try:
                command = json.loads(text)
            except ValueError:
                command = {"type": "unparseable", "text": text}
            self.recorded.messages.append(command)
            kind = command.get("type") if isinstance(command, dict) else None
            if kind == "Finalize":
                self.recorded.mark(Moment.FLUSH_IN)
                # Answered by its own task, so a slow answer does not stop the reading.
                self.answers.append(asyncio.create_task(self._finalize()))
            elif kind == "CloseStream":
                await self._final(from_finalize=False)
                await self._send(self._metadata())
                await self.ws.close(1000)
                return
            elif kind != "KeepAlive":
                await self._send(
                    {
                        "type": "Error",
                        "variant": "SchemaError",
                        "description": "could not parse the client message",
                        "message": text,
                    }
                )

    async def _finalize(self) -> None:
        await asyncio.sleep(self.state.stream_delay_s)
        await self._final(from_finalize=True)

    async def _audio(self, chunk: bytes) -> None:
        self.recorded.mark(Moment.AUDIO_IN)
        self.recorded.messages.append(chunk)
        self.received += len(chunk)
        fault, self.fault = self.fault, None
        await socket_fault(self.ws, fault)
        every = self.state.final_every_s
        if every is not None and self.audio_s - self.final_s >= every:
            await self._final(from_finalize=False)
            return
        if not _flag(self.query, "interim_results"):
            return
        heard = self.state.ended_by(self.audio_s, after_s=self.final_s)
        if len(heard) != self.interim_words:
            self.interim_words = len(heard)
            await self._send(self._results(heard, is_final=False, from_finalize=False))
            self.recorded.mark(Moment.PARTIAL)

    async def _final(self, *, from_finalize: bool) -> None:
        if self.audio_s <= self.final_s:
            return  # nothing buffered: Deepgram sends no answer
        words = self.state.started_before(self.audio_s, after_s=self.final_s)
        await self._send(self._results(words, is_final=True, from_finalize=from_finalize))
        if from_finalize:
            self.recorded.mark(Moment.FINAL)
        self.final_s = self.audio_s
        self.interim_words = 0

    def _results(
        self, words: list[SpokenWord], *, is_final: bool, from_finalize: bool
    ) -> dict[str, Any]:
        return {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": self.audio_s - self.final_s,
            "start": self.final_s,
            "is_final": is_final,
            "speech_final": is_final,
            "from_finalize": from_finalize,
            "channel": {"alternatives": [_alternative(self.state, words, self.query)]},
            "metadata": {
                "request_id": self.request_id,
                "model_info": {"name": self.query.get("model"), "version": "emulated", "arch": ""},
                "model_uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, str(self.query.get("model")))),
            },
        }

    def _metadata(self) -> dict[str, Any]:
        return {
            "type": "Metadata",
            "transaction_key": "deprecated",
            "request_id": self.request_id,
            "sha256": "0" * 64,
            "created": datetime.now(UTC).isoformat(),
            "duration": self.audio_s,
            "channels": 1,
        }

    async def _send(self, payload: dict[str, Any]) -> None:
        await self.ws.send_text(json.dumps(payload))


def routes(state: ListenState) -> list[BaseRoute]:
    """The live and pre-recorded ``/v1/listen`` routes."""

    def authorised(headers: Any) -> bool:
        return bool(headers.get("authorization") == f"Token {state.api_key}")

    async def listen_ws(websocket: WebSocket) -> None:
        recorded = record(state, websocket)
        fault = state.next_fault()
        if fault is not None and fault.kind == "http":
            body = fault.body if fault.body is not None else error_body("ERROR", "emulated")
            response = JSONResponse(body, status_code=fault.status, headers=fault.headers)
            await websocket.send_denial_response(response)
            return
        if not authorised(websocket.headers):
            body = error_body("INVALID_AUTH", "Invalid credentials.")
            await websocket.send_denial_response(JSONResponse(body, 401))
            return
        problem = _query_problem(websocket.query_params)
        if problem is not None:
            body = error_body("INVALID_QUERY_PARAMETER", problem)
            await websocket.send_denial_response(JSONResponse(body, 400))
            return
        await serve_socket(
            state, websocket, recorded, _ListenSocket(state, websocket, recorded, fault).serve
        )

    async def listen_rest(request: Request) -> Response:
        data = await request.body()
        recorded = record(state, request, {"bytes": len(data)})
        recorded.messages.append(data)
        if not authorised(request.headers):
            return JSONResponse(error_body("INVALID_AUTH", "Invalid credentials."), 401)
        fault = state.next_fault()
        if fault is not None and fault.kind == "http":
            body = fault.body if fault.body is not None else error_body("ERROR", "emulated")
            return JSONResponse(body, status_code=fault.status, headers=fault.headers)
        query = request.query_params
        problem = _query_problem(query)
        duration = _rest_duration(data, query)
        if problem is not None or duration is None:
            message = problem or "the emulator understands WAV or linear16 audio only"
            return JSONResponse(error_body("Bad Request", message), 400)
        if fault is not None and fault.kind == "malformed":
            return Response(b'{"metadata": ', media_type="application/json")
        words = state.started_before(duration)
        channel: dict[str, Any] = {"alternatives": [_alternative(state, words, query)]}
        if _flag(query, "detect_language"):
            channel["detected_language"] = state.language
        metadata = {
            "transaction_key": "deprecated",
            "request_id": str(uuid.uuid4()),
            "sha256": "0" * 64,
            "created": datetime.now(UTC).isoformat(),
            "duration": duration,
            "channels": 1,
            "models": [str(uuid.uuid5(uuid.NAMESPACE_URL, str(query.get("model"))))],
            "model_info": {},
        }
        return JSONResponse({"metadata": metadata, "results": {"channels": [channel]}})

    return [
        Route("/v1/listen", listen_rest, methods=["POST"]),
        WebSocketRoute("/v1/listen", listen_ws),
    ]


def _rest_duration(data: bytes, query: Any) -> float | None:
    if query.get("encoding") == "linear16":
        return len(data) / (2 * int(query.get("sample_rate", "16000")))
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            return wav.getnframes() / wav.getframerate()
    except (wave.Error, EOFError, ZeroDivisionError):
        return None


def app(state: ListenState) -> Starlette:
    """An app serving the Deepgram listen emulator."""
    return starlette_app(routes(state))
