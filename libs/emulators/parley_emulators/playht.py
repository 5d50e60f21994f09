"""Emulator of PlayHT's historical v2 API (the public service was shut down on 2025-12-31).

- ``POST /api/v2/tts/stream`` with ``AUTHORIZATION: Bearer <key>`` (the bare key is
  accepted too, as the old API did) and ``X-USER-ID``; body ``{"text", "voice",
  "voice_engine", "output_format": "wav"|"raw", "sample_rate", "speed"}`` -> chunked audio:
  a streamed WAV (sizes unknown: 0xFFFFFFFF) or raw PCM16.
- ``GET /api/v2/voices`` -> a bare array of voices.
- Instant cloning: ``POST /api/v2/cloned-voices/instant`` (multipart ``sample_file``,
  ``voice_name``) -> ``{"id": "s3://…/manifest.json", "name", "type": "instant",
  "voice_engine"}``, a voice that speaks at its sample's pitch (``cloning``); a sample that is
  not audio: 400 ``INVALID_SAMPLE``; every slot taken: 403 ``VOICE_LIMIT_REACHED``.
  ``GET /api/v2/cloned-voices`` lists them, ``DELETE /api/v2/cloned-voices`` with
  ``{"voice_id"}`` removes one (404 ``VOICE_NOT_FOUND`` when unknown).
- Errors ``{"error_message", "error_id"}``.

Fault kinds: ``http``, ``malformed`` (``wav`` answered with bytes that are not a WAV),
``drop`` (cut mid-body).
"""

from __future__ import annotations

import json
import struct
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from parley_emulators.base import EmulatorState, starlette_app
from parley_emulators.cloning import Clones, pitch_of, read_files
from parley_emulators.speech import chunks, paced, record_json, tone
from parley_emulators.spoken import record

__all__ = ["USER_ID", "VOICES", "app", "error_body", "routes", "wav_header"]

USER_ID = "test-user"
ENGINES = ("PlayHT2.0-turbo", "PlayHT2.0", "Play3.0-mini", "PlayDialog")
VOICES: tuple[dict[str, Any], ...] = (
    {
        "id": "s3://voice-cloning-zero-shot/d9ff78ba-d016-47f6-b0ef-dd630f59414e/female-cs/manifest.json",
        "name": "Jennifer",
        "language": "English (US)",
        "language_code": "en-US",
        "gender": "female",
        "accent": "american",
        "voice_engine": "PlayHT2.0",
    },
    {
        "id": "s3://voice-cloning-zero-shot/7c38b588-14e8-42b9-bacd-e03d1d673c3c/nicole/manifest.json",
        "name": "Nicole",
        "language": "English (US)",
        "language_code": "en-US",
        "gender": "female",
        "accent": "american",
        "voice_engine": "PlayHT2.0",
    },
)


def error_body(message: str, error_id: str) -> dict[str, str]:
    """A PlayHT v2 error body."""
    return {"error_message": message, "error_id": error_id}


def wav_header(rate: int) -> bytes:
    """The header of a streamed PCM16 mono WAV (sizes unknown when it is sent)."""
    unknown = 0xFFFFFFFF
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    return (
        b"RIFF" + struct.pack("<I", unknown) + b"WAVE"
        + b"fmt " + struct.pack("<I", len(fmt)) + fmt
        + b"data" + struct.pack("<I", unknown)
    )  # fmt: skip


def routes(state: EmulatorState, clones: Clones | None = None) -> list[BaseRoute]:
    """The v2 streaming, voices and instant-cloning routes; ``clones`` holds the voices
    cloned (a fresh one unless a test passes its own)."""
    cloned = clones if clones is not None else Clones()
    listed: list[dict[str, Any]] = []

    def refused(request: Request) -> Response | None:
        key = request.headers.get("authorization", "")
        if key not in (state.api_key, f"Bearer {state.api_key}"):
            return JSONResponse(error_body("Invalid credentials", "UNAUTHORIZED"), 401)
        if request.headers.get("x-user-id") != USER_ID:
            return JSONResponse(error_body("Invalid user id", "UNAUTHORIZED"), 403)
        return None

    async def stream(request: Request) -> Response:
        recorded = await record_json(state, request)
        denial = refused(request)
        if denial is not None:
            return denial
        fault = state.next_fault()
        if fault is not None and fault.kind == "http":
            return JSONResponse(fault.body, status_code=fault.status, headers=fault.headers)
        body = recorded.body if isinstance(recorded.body, dict) else {}
        text, rate = body.get("text"), body.get("sample_rate", 24000)
        output = body.get("output_format", "mp3")
        if not isinstance(text, str) or not text or not isinstance(rate, int):
            return JSONResponse(error_body("text and sample_rate are required", "BAD_REQUEST"), 400)
        if body.get("voice_engine") not in ENGINES or output not in ("wav", "raw"):
            return JSONResponse(error_body("unsupported engine or format", "BAD_REQUEST"), 400)
        speed = body.get("speed", 1.0)
        pitch = cloned.pitch(str(body.get("voice", "")))
        pieces = list(chunks(tone(text, rate, float(speed), pitch), rate))
        if output == "wav":
            header = b"NOTAWAVE" * 6 if fault is not None and fault.kind == "malformed" else None
            pieces.insert(0, header or wav_header(rate))
        drop_after = 2 if fault is not None and fault.kind == "drop" else None
        media = "audio/wav" if output == "wav" else "audio/basic"
        return StreamingResponse(
            paced(state, recorded, iter(pieces), drop_after=drop_after), media_type=media
        )

    async def voices(request: Request) -> Response:
        record(state, request)
        fault = state.next_fault()
        if fault is not None and fault.kind == "http":
            return JSONResponse(fault.body, status_code=fault.status, headers=fault.headers)
        return refused(request) or JSONResponse(list(VOICES))

    def refused_or_fault(request: Request) -> Response | None:
        """A wrong key's answer, else the next fault's (the cloning routes' order)."""
        denial = refused(request)
        if denial is not None:
            return denial
        fault = state.next_fault()
        if fault is None:
            return None
        return JSONResponse(fault.body, status_code=fault.status, headers=fault.headers)

    async def clone(request: Request) -> Response:
        async with request.form() as form:  # closes the uploads' temporary files
            files = await read_files(form.getlist("sample_file"))
            name = form.get("voice_name")
        body = {"voice_name": name, "sample_file": [f.summary() for f in files]}
        record(state, request, body)
        denial = refused_or_fault(request)
        if denial is not None:
            return denial
        if not isinstance(name, str) or not name.strip() or len(files) != 1:
            message = "voice_name and one sample_file are required"
            return JSONResponse(error_body(message, "BAD_REQUEST"), 400)
        if cloned.full:
            return JSONResponse(
                error_body("Cloned voice limit reached", "VOICE_LIMIT_REACHED"), 403
            )
        pitch = await pitch_of(files)
        if pitch is None:
            return JSONResponse(error_body("The sample is not usable audio", "INVALID_SAMPLE"), 400)
        voice_id = f"s3://voice-cloning-zero-shot/{uuid.uuid4()}/{name.strip()}/manifest.json"
        cloned.add(voice_id, files, pitch)
        voice = {"id": voice_id, "name": name.strip(), "type": "instant"}
        listed.append({**voice, "voice_engine": "PlayHT2.0"})
        return JSONResponse(listed[-1], status_code=201)

    async def cloned_voices(request: Request) -> Response:
        raw = await request.body()
        record(state, request, raw.decode("utf-8", "replace") or None)
        denial = refused_or_fault(request)
        if denial is not None:
            return denial
        if request.method == "GET":
            return JSONResponse(listed)
        try:
            voice_id = json.loads(raw or b"{}").get("voice_id")
        except (ValueError, AttributeError):
            voice_id = None
        found = next((v for v in listed if v["id"] == voice_id), None)
        if found is None:
            return JSONResponse(error_body("No such cloned voice", "VOICE_NOT_FOUND"), 404)
        listed.remove(found)
        cloned.remove(found["id"])
        return JSONResponse({"message": "Voice deleted", "deleted": found})

    return [
        Route("/api/v2/tts/stream", stream, methods=["POST"]),
        Route("/api/v2/voices", voices, methods=["GET"]),
        Route("/api/v2/cloned-voices/instant", clone, methods=["POST"]),
        Route("/api/v2/cloned-voices", cloned_voices, methods=["GET", "DELETE"]),
    ]


def app(state: EmulatorState, clones: Clones | None = None) -> Starlette:
    """An app serving the PlayHT v2 emulator."""
    return starlette_app(routes(state, clones))
