"""Emulator of OpenAI's speech endpoint, ``POST /v1/audio/speech``.

Answers ``response_format: "pcm"`` with chunked raw 24 kHz PCM16 LE mono (the speech tone of
``speech.py``, its duration divided by ``speed``); other formats get 400, as they are not
needed by Parley. Errors have OpenAI's shape ``{"error": {"message", "type", "param",
"code"}}``; faults add e.g. ``retry-after``. Fault kinds: ``http`` (status + body),
``malformed`` (200 with a JSON body instead of audio), ``drop`` (cut mid-stream).
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from parley_emulators.base import EmulatorState, starlette_app
from parley_emulators.speech import chunks, paced, record_json, tone

__all__ = ["MODELS", "SAMPLE_RATE", "VOICES", "app", "error_body", "routes"]

SAMPLE_RATE = 24_000
MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
VOICES = (
    "alloy", "ash", "ballad", "coral", "echo", "fable", "onyx",
    "nova", "sage", "shimmer", "verse", "marin", "cedar",
)  # fmt: skip
MAX_INPUT = 4096


def error_body(message: str, kind: str, code: str | None = None, param: str | None = None) -> Any:
    """An OpenAI error body."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _error(
    status: int, message: str, kind: str, code: str | None = None, param: str | None = None
) -> Response:
    return JSONResponse(error_body(message, kind, code, param), status_code=status)


def routes(state: EmulatorState) -> list[BaseRoute]:
    """The speech route, to mount alone or beside the other OpenAI emulators."""

    async def speech(request: Request) -> Response:
        recorded = await record_json(state, request)
        if request.headers.get("authorization") != f"Bearer {state.api_key}":
            return _error(
                401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
            )
        fault = state.next_fault()
        if fault is not None and fault.kind == "http":
            return JSONResponse(fault.body, status_code=fault.status, headers=fault.headers)
        body = recorded.body
        if not isinstance(body, dict):
            return _error(400, "We could not parse the JSON body.", "invalid_request_error")
        problem = _invalid(body)
        if problem is not None:
            return _error(400, problem[1], "invalid_request_error", param=problem[0])
        if fault is not None and fault.kind == "malformed":
            return JSONResponse({"object": "not audio"})
        pcm = tone(body["input"], SAMPLE_RATE, float(body.get("speed", 1.0)))
        drop_after = 2 if fault is not None and fault.kind == "drop" else None
        return StreamingResponse(
            paced(state, recorded, chunks(pcm, SAMPLE_RATE), drop_after=drop_after),
            media_type="audio/pcm",
        )

    return [Route("/v1/audio/speech", speech, methods=["POST"])]


def _invalid(body: dict[str, Any]) -> tuple[str, str] | None:
    """(param, message) of the first invalid field, as OpenAI reports it."""
    text = body.get("input")
    if not isinstance(text, str) or not text:
        return "input", "input is required"
    if len(text) > MAX_INPUT:
        return "input", f"input must be at most {MAX_INPUT} characters"
    if body.get("model") not in MODELS:
        return "model", "Invalid model"
    if body.get("voice") not in VOICES:
        return "voice", "Invalid voice"
    if body.get("response_format", "mp3") != "pcm":
        return "response_format", "the emulator serves only pcm"
    speed = body.get("speed", 1.0)
    if not isinstance(speed, int | float) or not 0.25 <= speed <= 4.0:
        return "speed", "speed must be between 0.25 and 4.0"
    return None


def app(state: EmulatorState) -> Starlette:
    """An app serving only the speech endpoint."""
    return starlette_app(routes(state))
