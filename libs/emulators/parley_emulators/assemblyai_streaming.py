"""Emulator of AssemblyAI Universal-Streaming v3, ``/v3/ws``.

- ``GET /v3/ws?sample_rate&encoding=pcm_s16le&speech_model&format_turns&language_detection``,
  auth ``Authorization: <key>`` (no Bearer) or ``?token=``; a bad key is refused on the
  upgrade with HTTP 401 (unverified: the real service may close 1008 instead).
- ``Begin`` first. Binary PCM chunks of 50-1000 ms (otherwise close 3007); each chunk that
  completes a word brings a ``Turn`` (``end_of_turn: false``) of the current turn's words so
  far (lower case, unpunctuated; ``word_is_final`` on all but the last).
- ``{"type": "ForceEndpoint"}`` ends the current turn: ``Turn`` with ``end_of_turn: true``
  (unformatted), then with ``format_turns=true`` the same ``turn_order`` again with
  ``turn_is_formatted: true`` and the words as the test wrote them. No turn in progress: no
  answer. ``{"type": "KeepAlive"}`` is recorded. ``{"type": "Terminate"}`` ends an open turn,
  sends ``Termination`` and closes with 1000.
- Multilingual sessions carry ``language_code`` on each Turn.

Fault kinds: ``http`` (the upgrade is refused with the fault's status), ``malformed`` (after
the first chunk, a text frame that is not JSON), ``close`` (after the first chunk, close with
the fault's ``status``, e.g. 3005), ``drop`` (after the first chunk, the TCP connection is cut
without a close frame). ``state.stream_delay_s`` delays the answer to ForceEndpoint.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket

from parley_emulators.base import Fault, Moment, Recorded, starlette_app
from parley_emulators.spoken import (
    BYTES_PER_SECOND,
    ClosedHere,
    SpokenWord,
    SttEmulatorState,
    record,
    serve_socket,
    socket_fault,
)

__all__ = ["app", "routes"]

_MIN_CHUNK_S = 0.05
_MAX_CHUNK_S = 1.0


class _StreamingSocket:
    """One ``/v3/ws`` session."""

    def __init__(
        self, state: SttEmulatorState, ws: WebSocket, recorded: Recorded, fault: Fault | None
    ) -> None:
        self.state = state
        self.ws = ws
        self.recorded = recorded
        self.fault = fault
        query = ws.query_params
        self.format_turns = query.get("format_turns", "false").lower() == "true"
        self.multilingual = "multilingual" in query.get("speech_model", "")
        self.received = 0
        self.turn_order = 0
        self.turn_start_s = 0.0  # audio where the current turn began
        self.turn_words = 0  # words of the current turn already reported
        self.opened = time.monotonic()
        self.answers: list[asyncio.Task[None]] = []

    @property
    def audio_s(self) -> float:
        return self.received / BYTES_PER_SECOND

    async def serve(self) -> None:
        try:
            await self._serve()
        finally:
            for answer in self.answers:
                answer.cancel()
            await asyncio.gather(*self.answers, return_exceptions=True)

    async def _serve(self) -> None:
        begin = {"type": "Begin", "id": str(uuid.uuid4()), "expires_at": int(time.time()) + 3600}
        await self._send(begin)
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                await self._audio(message["bytes"])
                continue
            try:
                command = json.loads(message.get("text") or "")
            except ValueError:
                await self.ws.close(3006, "Input validation error: invalid JSON")
                return
            self.recorded.messages.append(command)
            kind = command.get("type") if isinstance(command, dict) else None
            if kind == "ForceEndpoint":
                self.recorded.mark(Moment.FLUSH_IN)
                # Answered by its own task, so a slow answer does not stop the reading.
                self.answers.append(asyncio.create_task(self._force_endpoint()))
            elif kind == "Terminate":
                await self._end_turn()
                await self._send(
                    {
                        "type": "Termination",
                        "audio_duration_seconds": round(self.audio_s),
                        "session_duration_seconds": round(time.monotonic() - self.opened),
                    }
                )
                await self.ws.close(1000)
                return

    async def _force_endpoint(self) -> None:
        await asyncio.sleep(self.state.stream_delay_s)
        if await self._end_turn():
            self.recorded.mark(Moment.FINAL)

    async def _audio(self, chunk: bytes) -> None:
        self.recorded.mark(Moment.AUDIO_IN)
        self.recorded.messages.append(chunk)
        seconds = len(chunk) / BYTES_PER_SECOND
        if not _MIN_CHUNK_S <= seconds <= _MAX_CHUNK_S:
            reason = f"Input duration violation: {seconds * 1000:.0f} ms. Expected 50-1000 ms"
            await self.ws.close(3007, reason)
            raise ClosedHere
        self.received += len(chunk)
        fault, self.fault = self.fault, None
        await socket_fault(self.ws, fault)
        heard = self.state.ended_by(self.audio_s, after_s=self.turn_start_s)
        if len(heard) > self.turn_words:
            self.turn_words = len(heard)
            await self._send(self._turn(heard, end_of_turn=False, formatted=False))
            self.recorded.mark(Moment.PARTIAL)

    async def _end_turn(self) -> bool:
        """End the turn in progress; False when there is none (nothing is sent)."""
        words = self.state.started_before(self.audio_s, after_s=self.turn_start_s)
        if not words:
            return False
        await self._send(self._turn(words, end_of_turn=True, formatted=False))
        if self.format_turns:
            await self._send(self._turn(words, end_of_turn=True, formatted=True))
        self.turn_order += 1
        self.turn_start_s = self.audio_s
        self.turn_words = 0
        return True

    def _turn(
        self, words: list[SpokenWord], *, end_of_turn: bool, formatted: bool
    ) -> dict[str, Any]:
        def shown(word: SpokenWord) -> str:
            return word.punctuated if formatted else word.plain

        turn: dict[str, Any] = {
            "type": "Turn",
            "turn_order": self.turn_order,
            "turn_is_formatted": formatted,
            "end_of_turn": end_of_turn,
            "transcript": " ".join(shown(w) for w in words),
            "end_of_turn_confidence": 0.9 if end_of_turn else 0.1,
            "words": [
                {
                    "start": round(w.start * 1000),
                    "end": round(w.end * 1000),
                    "text": shown(w),
                    "confidence": self.state.confidence,
                    "word_is_final": end_of_turn or i < len(words) - 1,
                }
                for i, w in enumerate(words)
            ],
        }
        if self.multilingual:
            turn["language_code"] = self.state.language
            turn["language_confidence"] = 0.9
        return turn

    async def _send(self, payload: dict[str, Any]) -> None:
        await self.ws.send_text(json.dumps(payload))


def routes(state: SttEmulatorState) -> list[BaseRoute]:
    """The ``/v3/ws`` route."""

    async def streaming(websocket: WebSocket) -> None:
        recorded = record(state, websocket)
        fault = state.next_fault()
        if fault is not None and fault.kind == "http":
            body = fault.body if fault.body is not None else {"error": "emulated failure"}
            response = JSONResponse(body, status_code=fault.status, headers=fault.headers)
            await websocket.send_denial_response(response)
            return
        key = websocket.headers.get("authorization") or websocket.query_params.get("token")
        if key != state.api_key:
            await websocket.send_denial_response(Response(status_code=401))
            return
        query = websocket.query_params
        if query.get("encoding", "pcm_s16le") != "pcm_s16le" or query.get("sample_rate") != "16000":
            await websocket.send_denial_response(
                JSONResponse({"error": "the emulator takes pcm_s16le at 16000 Hz"}, 400)
            )
            return
        session = _StreamingSocket(state, websocket, recorded, fault)
        await serve_socket(state, websocket, recorded, session.serve)

    return [WebSocketRoute("/v3/ws", streaming)]


def app(state: SttEmulatorState) -> Starlette:
    """An app serving the AssemblyAI streaming emulator."""
    return starlette_app(routes(state))
