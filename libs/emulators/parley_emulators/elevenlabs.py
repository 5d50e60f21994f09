"""Emulator of the ElevenLabs API: text-to-speech over HTTP (whole and streamed), the
input-streaming WebSocket, the voices and models lists, and instant voice cloning.

- ``POST /v1/text-to-speech/{voice_id}[/stream]?output_format=pcm_<rate>`` with
  ``{"text", "model_id", "voice_settings": {"speed"}}`` -> raw PCM16 at that rate.
- ``WS /v1/text-to-speech/{voice_id}/stream-input?model_id&output_format``: first message
  ``{"text": " "}`` (voice settings), then text; audio is generated when the buffer reaches
  ``CHUNK_CHARS``, on ``flush: true`` and at the end (``{"text": ""}``), sent as
  ``{"audio": <base64>, "isFinal": null, "alignment", "normalizedAlignment"}``, then
  ``{"isFinal": true}`` and a 1000 close.
- ``GET /v1/voices`` -> ``{"voices": [...]}`` from ``ElevenLabsState.voices``; ``GET /v1/models``.
- ``POST /v1/voices/add`` (multipart ``name``, ``files`` — or ``files[]`` — ``description``,
  ``labels`` as a JSON string, ``remove_background_noise``) -> ``{"voice_id",
  "requires_verification": false}``; the voice is listed (category ``cloned``) and speaks at
  its samples' pitch (``cloning``). Samples that are not audio or under a second: 400
  ``invalid_audio``; every voice slot taken (``state.clones.limit``): 400
  ``voice_limit_reached``. ``GET /v1/voices/{id}`` -> the voice, ``DELETE /v1/voices/{id}``
  -> ``{"status": "ok"}``; an unknown id: 404 ``voice_not_found``.
- Auth ``xi-api-key``; errors ``{"detail": {"status", "message"}}``.

Fault kinds: ``http`` (status/body/headers; a WebSocket handshake is refused with them),
``malformed`` (a frame or body that is not the protocol's), ``drop`` (HTTP: cut mid-body;
WebSocket: close 1011 after the first audio), ``close`` (WebSocket: an error message with
``error`` = ``body``, then close with code ``status`` and that reason).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from parley_emulators.base import EmulatorState, Fault, Moment, Recorded, starlette_app
from parley_emulators.cloning import Clones, UploadedFile, pitch_of, read_files
from parley_emulators.speech import MS_PER_CHAR, chunks, paced, record_json, tone
from parley_emulators.spoken import record

__all__ = ["CHUNK_CHARS", "ElevenLabsState", "app", "detail", "routes"]

PCM_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
CHUNK_CHARS = 120  # ElevenLabs' default first chunk_length_schedule entry

DEFAULT_VOICES: tuple[dict[str, Any], ...] = (
    {
        "voice_id": "JBFqnCBsd6RMkjVDRZzb",
        "name": "George",
        "category": "premade",
        "labels": {"accent": "british", "gender": "male", "language": "en"},
        "description": "Warm, captivating storyteller",
        "preview_url": None,
    },
    {
        "voice_id": "EXAVITQu4vr4xnSDxMaL",
        "name": "Sarah",
        "category": "premade",
        "labels": {"accent": "american", "gender": "female", "language": "en"},
        "description": "Young adult woman, confident",
        "preview_url": None,
    },
)
DEFAULT_MODELS: tuple[dict[str, Any], ...] = tuple(
    {"model_id": model_id, "name": name, "can_do_text_to_speech": True}
    for model_id, name in (
        ("eleven_flash_v2_5", "Eleven Flash v2.5"),
        ("eleven_turbo_v2_5", "Eleven Turbo v2.5"),
        ("eleven_multilingual_v2", "Eleven Multilingual v2"),
    )
)


@dataclass
class ElevenLabsState(EmulatorState):
    """The traffic plus the account's voices, which cloning adds to."""

    voices: list[dict[str, Any]] = field(default_factory=lambda: [dict(v) for v in DEFAULT_VOICES])
    models: list[dict[str, Any]] = field(default_factory=lambda: [dict(m) for m in DEFAULT_MODELS])
    clones: Clones = field(default_factory=Clones)

    def voice_ids(self) -> set[str]:
        """Ids of the voices the account has."""
        return {v["voice_id"] for v in self.voices}

    def voice(self, voice_id: str) -> dict[str, Any] | None:
        """The account's voice ``voice_id``, if it has it."""
        return next((v for v in self.voices if v["voice_id"] == voice_id), None)


def detail(status: str, message: str) -> dict[str, Any]:
    """An ElevenLabs error body."""
    return {"detail": {"status": status, "message": message}}


def routes(state: ElevenLabsState) -> list[BaseRoute]:
    """Every ElevenLabs route of the emulator."""

    def refused(headers: Any) -> Response | None:
        if headers.get("xi-api-key") != state.api_key:
            return JSONResponse(detail("invalid_api_key", "Invalid API key"), status_code=401)
        return None

    def refused_or_fault(request: Request) -> Response | None:
        """A wrong key's answer, else the next fault's (the cloning routes' order)."""
        denial = refused(request.headers)
        if denial is not None:
            return denial
        fault = state.next_fault()
        return _http_fault(fault) if fault is not None else None

    async def voices(request: Request) -> Response:
        record(state, request)
        fault = state.next_fault()
        if fault is not None:
            return _http_fault(fault)
        return refused(request.headers) or JSONResponse({"voices": state.voices})

    async def models(request: Request) -> Response:
        record(state, request)
        return refused(request.headers) or JSONResponse(state.models)

    async def speech(request: Request) -> Response:
        recorded = await record_json(state, request)
        denial = refused(request.headers)
        if denial is not None:
            return denial
        fault = state.next_fault()
        if fault is not None and fault.kind == "http":
            return _http_fault(fault)
        checked = _check_speech(state, request.path_params["voice_id"], recorded)
        if isinstance(checked, Response):
            return checked
        text, rate, speed = checked
        pcm = tone(text, rate, speed, state.clones.pitch(request.path_params["voice_id"]))
        if fault is not None and fault.kind == "malformed":
            return JSONResponse({"audio": "not raw audio"})
        if not request.url.path.endswith("/stream"):
            return Response(pcm, media_type="audio/pcm")
        drop_after = 2 if fault is not None and fault.kind == "drop" else None
        return StreamingResponse(
            paced(state, recorded, chunks(pcm, rate), drop_after=drop_after),
            media_type="audio/pcm",
        )

    async def stream_input(websocket: WebSocket) -> None:
        await _InputStream(state, websocket).serve()

    async def add_voice(request: Request) -> Response:
        async with request.form() as form:  # closes the uploads' temporary files
            files = await read_files([*form.getlist("files"), *form.getlist("files[]")])
            fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        recorded = record(state, request, {**fields, "files": [f.summary() for f in files]})
        denial = refused_or_fault(request)
        if denial is not None:
            return denial
        name = fields.get("name", "").strip()
        if not name or not files:
            missing = "name" if not name else "files"
            return JSONResponse({"detail": [{"loc": ["body", missing], "msg": "required"}]}, 422)
        if state.clones.full:
            message = "You have reached your maximum amount of custom voices"
            return JSONResponse(detail("voice_limit_reached", message), 400)
        pitch = await pitch_of(files)
        if pitch is None:
            message = "A sample is not audio, or too short to clone a voice from"
            return JSONResponse(detail("invalid_audio", message), 400)
        voice_id = secrets.token_hex(10)  # ElevenLabs' ids are 20 characters
        state.clones.add(voice_id, files, pitch)
        state.voices.append(_cloned_voice(voice_id, fields, files))
        recorded.query["voice_id"] = voice_id
        return JSONResponse({"voice_id": voice_id, "requires_verification": False})

    async def voice(request: Request) -> Response:
        record(state, request)
        denial = refused_or_fault(request)
        if denial is not None:
            return denial
        voice_id = request.path_params["voice_id"]
        found = state.voice(voice_id)
        if found is None:
            return JSONResponse(
                detail("voice_not_found", f"A voice with voice_id {voice_id} was not found."), 404
            )
        if request.method == "GET":
            return JSONResponse(found)
        state.voices.remove(found)
        state.clones.remove(voice_id)
        return JSONResponse({"status": "ok"})

    return [
        Route("/v1/voices", voices, methods=["GET"]),
        Route("/v1/voices/add", add_voice, methods=["POST"]),
        Route("/v1/voices/{voice_id}", voice, methods=["GET", "DELETE"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/text-to-speech/{voice_id}", speech, methods=["POST"]),
        Route("/v1/text-to-speech/{voice_id}/stream", speech, methods=["POST"]),
        WebSocketRoute("/v1/text-to-speech/{voice_id}/stream-input", stream_input),
    ]


def _http_fault(fault: Fault) -> Response:
    return JSONResponse(fault.body, status_code=fault.status, headers=fault.headers)


def _cloned_voice(
    voice_id: str, fields: dict[str, str], files: list[UploadedFile]
) -> dict[str, Any]:
    """A voice as ``GET /v1/voices`` lists an instant clone."""
    try:
        labels = json.loads(fields.get("labels") or "null")
    except ValueError:
        labels = None
    return {
        "voice_id": voice_id,
        "name": fields["name"].strip(),
        "category": "cloned",
        "labels": labels if isinstance(labels, dict) else {},
        "description": fields.get("description") or None,
        "preview_url": None,
        "samples": [
            {
                "sample_id": secrets.token_hex(10),
                "file_name": f.filename,
                "mime_type": f.content_type,
                "size_bytes": len(f.data),
            }
            for f in files
        ],
    }


def _rate(output_format: str | None) -> int | None:
    """The rate of a ``pcm_<rate>`` format (the only ones the emulator speaks)."""
    if output_format is None or not output_format.startswith("pcm_"):
        return None
    try:
        rate = int(output_format[len("pcm_") :])
    except ValueError:
        return None
    return rate if rate in PCM_RATES else None


def _check_speech(
    state: ElevenLabsState, voice_id: str, recorded: Recorded
) -> tuple[str, int, float] | Response:
    """(text, rate, speed) of a valid HTTP request, or the error ElevenLabs would answer."""
    if voice_id not in state.voice_ids():
        return JSONResponse(
            detail("voice_not_found", f"A voice with voice_id {voice_id} was not found."), 404
        )
    rate = _rate(recorded.query.get("output_format"))
    if rate is None:
        return JSONResponse(detail("invalid_output_format", "the emulator serves pcm_*"), 400)
    body = recorded.body if isinstance(recorded.body, dict) else {}
    text = body.get("text")
    if not isinstance(text, str) or not text:
        return JSONResponse({"detail": [{"loc": ["body", "text"], "msg": "required"}]}, 422)
    model = body.get("model_id") or "eleven_multilingual_v2"
    if model not in {m["model_id"] for m in state.models}:
        return JSONResponse(detail("model_not_found", f"Model {model} does not exist"), 400)
    return text, rate, _speed(body.get("voice_settings"))


def _speed(settings: Any) -> float:
    speed = settings.get("speed") if isinstance(settings, dict) else None
    return float(speed) if isinstance(speed, int | float) and speed > 0 else 1.0


class _InputStream:
    """One input-streaming WebSocket session."""

    def __init__(self, state: ElevenLabsState, websocket: WebSocket) -> None:
        self.state = state
        self.ws = websocket
        self.recorded = record(state, websocket)
        self.rate = _rate(websocket.query_params.get("output_format")) or 0
        self.speed = 1.0
        self.buffer = ""
        self.jobs: asyncio.Queue[str | None] = asyncio.Queue()  # None = end of input
        self.fault: Fault | None = None

    async def serve(self) -> None:
        ws, state = self.ws, self.state
        fault = state.next_fault()
        if fault is not None and fault.kind == "http":
            await ws.send_denial_response(_http_fault(fault))
            return
        if ws.headers.get("xi-api-key") != state.api_key:
            body = detail("invalid_api_key", "Invalid API key")
            await ws.send_denial_response(JSONResponse(body, status_code=401))
            return
        voice = ws.path_params["voice_id"]
        if voice not in state.voice_ids() or not self.rate:
            status = "voice_not_found" if voice not in state.voice_ids() else "invalid_format"
            await ws.send_denial_response(JSONResponse(detail(status, status), status_code=400))
            return
        self.fault = fault
        await ws.accept()
        sender = asyncio.create_task(self._send_audio())
        try:
            if await self._receive():
                await sender
        except (WebSocketDisconnect, OSError):
            state.mark_closed(self.recorded)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender

    async def _receive(self) -> bool:
        """Take the client's messages until its end of input (True) or a protocol error."""
        while True:
            raw = await self.ws.receive_text()
            try:
                message = json.loads(raw)
            except ValueError:
                await self.ws.close(1008, "invalid JSON")
                return False
            self.recorded.messages.append(message)
            if len(self.recorded.messages) == 1:
                self.speed = _speed(message.get("voice_settings"))
                continue
            text = message.get("text", "")
            if text == "":
                self._generate(self.buffer)
                self.jobs.put_nowait(None)
                return True
            if text.strip() or not message.get("flush"):
                self.buffer += text  # a lone space only carries the flush
            if message.get("flush"):
                self.recorded.mark(Moment.FLUSH_IN)
            if message.get("flush") or len(self.buffer) >= CHUNK_CHARS:
                self._generate(self.buffer)

    def _generate(self, text: str) -> None:
        self.buffer = ""
        if text:
            self.jobs.put_nowait(text)

    async def _send_audio(self) -> None:
        while (text := await self.jobs.get()) is not None:
            fault = self.fault
            if fault is not None and fault.kind == "close":
                error = {"message": str(fault.body), "error": str(fault.body), "code": fault.status}
                await self.ws.send_text(json.dumps(error))
                await self.ws.close(fault.status, str(fault.body))
                return
            pitch = self.state.clones.pitch(self.ws.path_params["voice_id"])
            pieces = list(chunks(tone(text, self.rate, self.speed, pitch), self.rate))
            for index, piece in enumerate(pieces):
                if fault is not None and fault.kind == "malformed":
                    await self.ws.send_text("{not json")
                    fault = self.fault = None
                    continue
                share = len(text) * index // len(pieces), len(text) * (index + 1) // len(pieces)
                chars = text[share[0] : share[1]]
                await self.ws.send_text(json.dumps(self._audio_message(piece, chars)))
                self.recorded.mark(Moment.FIRST_BYTE)
                if fault is not None and fault.kind == "drop":
                    await self.ws.close(1011, "internal error")
                    return
                await asyncio.sleep(self.state.stream_delay_s)
        await self.ws.send_text(json.dumps({"isFinal": True}))
        await self.ws.close(1000)

    def _audio_message(self, pcm: bytes, chars: str) -> dict[str, Any]:
        per_char = MS_PER_CHAR / self.speed
        alignment = {
            "chars": list(chars),
            "charStartTimesMs": [round(i * per_char) for i in range(len(chars))],
            "charDurationsMs": [round(per_char)] * len(chars),
        }
        return {
            "audio": base64.b64encode(pcm).decode("ascii"),
            "isFinal": None,
            "alignment": alignment,
            "normalizedAlignment": alignment,
        }


def app(state: ElevenLabsState) -> Starlette:
    """An app serving the ElevenLabs emulator."""
    return starlette_app(routes(state))
