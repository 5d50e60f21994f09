"""Emulator of OpenAI's transcription endpoint, and Groq's copy of it.

- ``POST /v1/audio/transcriptions`` (OpenAI) and ``POST /openai/v1/audio/transcriptions``
  (Groq), multipart: ``file`` (a WAV: its length decides which words were "said", see
  :mod:`parley_emulators.spoken`), ``model``, ``language``, ``prompt``, ``temperature``,
  ``response_format`` (``json`` | ``text`` | ``srt`` | ``vtt`` | ``verbose_json``), repeated
  ``timestamp_granularities[]``, ``include[]=logprobs``, ``stream``.
- ``verbose_json`` (whisper models only): ``task``, ``language`` as a name ("english"),
  ``duration``, ``text``, ``words`` (when asked for), ``segments`` with ``avg_logprob``.
  ``json``: ``text`` and ``usage`` (``duration`` for whisper models, ``tokens`` for gpt-*),
  plus ``logprobs`` when included. gpt-* with ``stream=true``: SSE
  ``transcript.text.delta`` per word (``state.stream_delay_s`` apart), then
  ``transcript.text.done``.
- A non-streamed answer takes ``state.stream_delay_s``; a client hanging up meanwhile is
  recorded as closed.
- Auth ``Authorization: Bearer <key>``; errors ``{"error": {"message", "type", "param",
  "code"}}`` with the status.

Fault kinds: ``http`` (status, body and headers, e.g. 429 + ``retry-after-ms``),
``malformed`` (a 200 whose JSON does not parse; in a stream, an event that does not),
``drop`` (the stream is cut after its first delta).
"""

from __future__ import annotations

import asyncio
import io
import math
import wave
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from parley_emulators.base import Fault, Moment, Recorded, starlette_app
from parley_emulators.spoken import SpokenWord, SttEmulatorState, record
from parley_emulators.sse import CUT, Frame, SseResponse, event_frame

__all__ = ["LANGUAGE_NAMES", "app", "error_body", "routes"]

LANGUAGE_NAMES = {"en": "english", "de": "german", "fr": "french", "es": "spanish"}
_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    """OpenAI's error body for ``status``."""
    kinds = {
        400: ("invalid_request_error", None),
        401: ("invalid_request_error", "invalid_api_key"),
        429: ("requests", "rate_limit_exceeded"),
    }
    kind, code = kinds.get(status, ("server_error", None))
    text = message or {401: "Incorrect API key provided.", 429: "Rate limit reached."}.get(
        status, "The server had an error while processing your request."
    )
    return {"error": {"message": text, "type": kind, "param": None, "code": code}}


def _duration_s(data: bytes) -> float | None:
    """Seconds of audio in a WAV file, or None if it is not one."""
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            return wav.getnframes() / wav.getframerate()
    except (wave.Error, EOFError, ZeroDivisionError):
        return None


def _timestamp(seconds: float, separator: str) -> str:
    ms = round(seconds * 1000)
    return (
        f"{ms // 3_600_000:02}:{ms // 60_000 % 60:02}:{ms // 1000 % 60:02}{separator}{ms % 1000:03}"
    )


def _captions(words: list[SpokenWord], duration: float, kind: str) -> str:
    text = " ".join(w.punctuated for w in words)
    separator = "," if kind == "srt" else "."
    cue = f"{_timestamp(0.0, separator)} --> {_timestamp(duration, separator)}\n{text}\n"
    return f"1\n{cue}" if kind == "srt" else f"WEBVTT\n\n{cue}"


class _Transcription:
    """One request's answer, in each response format."""

    def __init__(self, state: SttEmulatorState, model: str, duration: float) -> None:
        self.state = state
        self.model = model
        self.duration = duration
        self.words = state.started_before(duration)
        self.text = " ".join(w.punctuated for w in self.words)

    def logprobs(self) -> list[dict[str, Any]]:
        value = math.log(self.state.confidence)
        return [{"token": w.punctuated, "logprob": value, "bytes": []} for w in self.words]

    def usage(self) -> dict[str, Any]:
        if self.model.startswith("gpt-"):
            tokens = len(self.words)
            audio = math.ceil(self.duration * 10)
            return {
                "type": "tokens",
                "input_tokens": audio,
                "output_tokens": tokens,
                "total_tokens": audio + tokens,
                "input_token_details": {"audio_tokens": audio, "text_tokens": 0},
            }
        return {"type": "duration", "seconds": math.ceil(self.duration)}

    def json(self, include_logprobs: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"text": self.text, "usage": self.usage()}
        if include_logprobs:
            body["logprobs"] = self.logprobs()
        return body

    def verbose(self, granularities: list[str]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "task": "transcribe",
            "language": LANGUAGE_NAMES.get(self.state.language, self.state.language),
            "duration": self.duration,
            "text": self.text,
            "usage": {"type": "duration", "seconds": math.ceil(self.duration)},
        }
        if "word" in granularities:
            body["words"] = [
                {"word": w.punctuated, "start": w.start, "end": w.end} for w in self.words
            ]
        if "segment" in granularities or not granularities:
            body["segments"] = [
                {
                    "id": 0,
                    "seek": 0,
                    "start": 0.0,
                    "end": self.duration,
                    "text": f" {self.text}",
                    "tokens": list(range(50364, 50364 + max(1, len(self.words)))),
                    "temperature": 0.0,
                    "avg_logprob": self.state.avg_logprob,
                    "compression_ratio": 1.0,
                    "no_speech_prob": 0.01,
                }
            ]
        return body

    def stream(self, include_logprobs: bool, fault: Fault | None) -> list[Frame]:
        frames: list[Frame] = []
        for index, word in enumerate(self.words):
            delta = word.punctuated if index == 0 else f" {word.punctuated}"
            event: dict[str, Any] = {"type": "transcript.text.delta", "delta": delta}
            if include_logprobs:
                event["logprobs"] = self.logprobs()[index : index + 1]
            frames.append(event_frame(event))
            if index == 0 and fault is not None and fault.kind in ("drop", "malformed"):
                frames.append(CUT if fault.kind == "drop" else b"data: {not json\n\n")
        done: dict[str, Any] = {"type": "transcript.text.done", "text": self.text}
        if include_logprobs:
            done["logprobs"] = self.logprobs()
        done["usage"] = self.usage()
        frames.append(event_frame(done))
        return frames


async def _client_stayed(state: SttEmulatorState, request: Request, recorded: Recorded) -> bool:
    """Take ``state.stream_delay_s`` to answer (the model "thinking"), noticing the client
    hang up meanwhile (recorded as closed): False if it did."""
    if state.stream_delay_s <= 0:
        return True

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    gone = asyncio.create_task(disconnected())
    try:
        await asyncio.wait({gone}, timeout=state.stream_delay_s)
    finally:
        gone.cancel()
    if gone.done() and not gone.cancelled():
        state.mark_closed(recorded)
        return False
    return True


@dataclass(frozen=True)
class _Form:
    """The multipart fields of one request, read (and its temporary files closed) at once."""

    fields: dict[str, str]
    granularities: list[str]
    include: list[str]
    filename: str | None
    data: bytes | None


async def _read_form(request: Request) -> _Form:
    async with request.form() as form:
        upload = form.get("file")
        return _Form(
            fields={k: v for k, v in form.multi_items() if isinstance(v, str)},
            granularities=[
                g for g in form.getlist("timestamp_granularities[]") if isinstance(g, str)
            ],
            include=[i for i in form.getlist("include[]") if isinstance(i, str)],
            filename=upload.filename if isinstance(upload, UploadFile) else None,
            data=await upload.read() if isinstance(upload, UploadFile) else None,
        )


def routes(state: SttEmulatorState) -> list[BaseRoute]:
    """OpenAI's and Groq's transcription routes."""

    async def transcribe(request: Request) -> Response:
        form = await _read_form(request)
        recorded = record(state, request, {**form.fields, "file_bytes": len(form.data or b"")})
        recorded.messages.append(form.data or b"")
        if request.headers.get("authorization") != f"Bearer {state.api_key}":
            return JSONResponse(error_body(401), 401)
        fault = state.next_fault()
        if fault is not None and fault.kind == "http":
            body = fault.body if fault.body is not None else error_body(fault.status)
            return JSONResponse(body, status_code=fault.status, headers=fault.headers)
        problem = _problem(form)
        if problem is not None:
            return JSONResponse(error_body(400, problem), 400)
        duration = _duration_s(form.data or b"")
        if duration is None:
            return JSONResponse(error_body(400, "the emulator understands WAV files only"), 400)
        model = form.fields["model"]
        kind = form.fields.get("response_format", "json")
        include_logprobs = "logprobs" in form.include
        answer = _Transcription(state, model, duration)
        if form.fields.get("stream", "false").lower() == "true":
            return SseResponse(state, recorded, answer.stream(include_logprobs, fault))
        if not await _client_stayed(state, request, recorded):
            return Response(status_code=499)  # nobody is listening any more
        if fault is not None and fault.kind == "malformed":
            return Response(b'{"text": "unfinished', media_type="application/json")
        if kind == "verbose_json":
            return _answered(recorded, JSONResponse(answer.verbose(form.granularities)))
        if kind == "json":
            return _answered(recorded, JSONResponse(answer.json(include_logprobs)))
        if kind == "text":
            return _answered(recorded, PlainTextResponse(answer.text))
        return _answered(recorded, PlainTextResponse(_captions(answer.words, duration, kind)))

    return [
        Route("/v1/audio/transcriptions", transcribe, methods=["POST"]),
        Route("/openai/v1/audio/transcriptions", transcribe, methods=["POST"]),
    ]


def _answered(recorded: Recorded, response: Response) -> Response:
    """``response``, its whole body ready now: noted as the answer's first and last bytes."""
    recorded.mark(Moment.FIRST_BYTE)
    recorded.mark(Moment.LAST_BYTE)
    return response


def _problem(form: _Form) -> str | None:
    """What makes the request invalid, in OpenAI's words, or None."""
    if form.data is None:
        return "file is required"
    if not form.filename or "." not in form.filename:
        return "the file needs a name with an extension, e.g. audio.wav"
    model = form.fields.get("model", "")
    if not model:
        return "model is required"
    kind = form.fields.get("response_format", "json")
    if kind not in _FORMATS or (kind == "verbose_json" and model.startswith("gpt-")):
        return f"response_format '{kind}' is not compatible with model '{model}'"
    streaming = form.fields.get("stream", "false").lower() == "true"
    if streaming and not model.startswith("gpt-"):
        return "streaming is not supported for the whisper-1 model"
    return None


def app(state: SttEmulatorState) -> Starlette:
    """An app serving the transcription emulator (OpenAI's and Groq's paths)."""
    return starlette_app(routes(state))
