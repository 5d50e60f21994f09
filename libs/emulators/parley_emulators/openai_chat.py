"""OpenAI's chat completions endpoint, streamed as OpenAI streams it; also Groq's copy of it.

``POST /v1/chat/completions`` (OpenAI, and servers compatible with it) and
``POST /openai/v1/chat/completions`` (Groq) answer ``stream: true`` requests with SSE
``data:`` lines and no ``event:`` lines: a first chunk with the role and empty content, one
chunk per content delta, a chunk with an empty delta and the ``finish_reason``, then (when
``stream_options.include_usage``) a chunk with ``"choices": []`` and the ``usage``, then
``data: [DONE]``. Groq's chunks carry ``x_groq`` (its request id first, its usage on the
final choice chunk). Errors use OpenAI's body ``{"error": {"message", "type", "param",
"code"}}``; faults keep their ``retry-after`` / ``x-should-retry`` headers.

The answer is ``reply`` when given, else ``"You said: "`` and the last user message, one word
per delta. Fault kinds besides HTTP ones: ``"malformed"`` (a chunk that is not JSON after the
first delta), ``"drop"`` (the connection cut after the first delta), ``"stream_error"`` (an
``{"error": ...}`` chunk after the first delta). ``state.api_key`` empty accepts any key.
"""

from __future__ import annotations

import itertools
import time
from functools import partial
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from parley_emulators.base import EmulatorState, Fault, starlette_app
from parley_emulators.dialogue import answer, content_text, count_tokens
from parley_emulators.recording import fault_response, record_json
from parley_emulators.sse import CUT, Frame, SseResponse, event_frame

__all__ = ["GROQ_PATH", "OPENAI_PATH", "app", "error_body", "routes"]

OPENAI_PATH = "/v1/chat/completions"
GROQ_PATH = "/openai/v1/chat/completions"

_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Access denied."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: ("server_error", None, "The server had an error while processing your request."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}
_ids = itertools.count(1)


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    """OpenAI's error body for ``status``."""
    kind, code, default = _ERRORS.get(status, ("server_error", None, "Something went wrong."))
    return {"error": {"message": message or default, "type": kind, "param": None, "code": code}}


def _error(status: int, message: str | None = None) -> Response:
    return JSONResponse(error_body(status, message), status_code=status)


def _frames(
    body: dict[str, Any], reply: str | None, fault: Fault | None, groq: bool
) -> list[Frame]:
    model = str(body["model"])
    messages = body["messages"]
    budget = body.get("max_completion_tokens") or body.get("max_tokens")
    said = answer(messages, reply, budget)
    number = next(_ids)
    request_id = f"req_emu{number}"
    base = {
        "id": f"chatcmpl-emu{number}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_emulator",
    }
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        payload: dict[str, Any] = {**base, "choices": [choice], **extra}
        if include_usage:
            payload["usage"] = None
        return event_frame(payload)

    prompt = sum(count_tokens(content_text(m.get("content"))) for m in messages)
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": len(said.deltas),
        "total_tokens": prompt + len(said.deltas),
        "prompt_tokens_details": {"cached_tokens": 0},
    }
    first: dict[str, Any] = {"x_groq": {"id": request_id}} if groq else {}
    frames: list[Frame] = [chunk({"role": "assistant", "content": ""}, **first)]
    for index, text in enumerate(said.deltas):
        frames.append(chunk({"content": text}))
        if index == 0 and fault is not None:
            frames.append(_stream_fault(fault))
    last: dict[str, Any] = {"x_groq": {"id": request_id, "usage": usage}} if groq else {}
    frames.append(chunk({}, "length" if said.truncated else "stop", **last))
    if include_usage:
        frames.append(event_frame({**base, "choices": [], "usage": usage}))
    frames.append(event_frame("[DONE]"))
    return frames


def _stream_fault(fault: Fault) -> Frame:
    if fault.kind == "drop":
        return CUT
    if fault.kind == "malformed":
        return b'data: {"id": "chatcmpl-broken", "choices": [\n\n'
    return event_frame(fault.body or error_body(500))


async def _complete(
    state: EmulatorState, reply: str | None, groq: bool, request: Request
) -> Response:
    recorded, body = await record_json(state, request)
    if state.api_key and request.headers.get("authorization") != f"Bearer {state.api_key}":
        return _error(401)
    fault = state.next_fault()
    if fault is not None and fault.kind == "http":
        return fault_response(fault, error_body)
    if not isinstance(body, dict):
        return _error(400, "We could not parse the JSON body of your request.")
    if not body.get("model") or not isinstance(body.get("messages"), list) or not body["messages"]:
        return _error(400, "'model' and a non-empty 'messages' array are required.")
    if body.get("stream") is not True:
        return _error(400, "This emulator answers streamed requests only ('stream': true).")
    frames = _frames(body, reply, fault, groq)
    return SseResponse(state, recorded, frames, headers={"x-request-id": f"req_{id(recorded)}"})


def routes(state: EmulatorState, *, reply: str | None = None) -> list[BaseRoute]:
    """OpenAI's path and Groq's, served from ``state``; ``reply`` fixes the answer."""
    return [
        Route(OPENAI_PATH, partial(_complete, state, reply, False), methods=["POST"]),
        Route(GROQ_PATH, partial(_complete, state, reply, True), methods=["POST"]),
    ]


def app(state: EmulatorState, *, reply: str | None = None) -> Starlette:
    """An app serving only the chat completions routes."""
    return starlette_app(routes(state, reply=reply))
