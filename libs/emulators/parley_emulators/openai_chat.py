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
per delta. With a ``ToolPlan`` whose function the request offers, the model streams the
plan's preamble, then ``delta.tool_calls`` (``finish_reason: tool_calls``); the request that
ends with the ``tool`` message is answered with its content. Fault kinds besides HTTP
ones: ``"malformed"`` (a chunk that is not JSON after the first delta), ``"drop"`` (the
connection cut after the first delta), ``"stream_error"`` (an ``{"error": ...}`` chunk after
the first delta). ``state.api_key`` empty accepts any key.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from parley_emulators.base import EmulatorState, Fault, starlette_app
from parley_emulators.dialogue import (
    PlannedCall,
    ToolPlans,
    answer,
    content_text,
    count_tokens,
    offered_plan,
)
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


def _offered(body: dict[str, Any]) -> list[str]:
    """The names of the functions the request offers."""
    return [
        str((t.get("function") or {}).get("name"))
        for t in body.get("tools") or ()
        if isinstance(t, dict) and t.get("type") == "function"
    ]


def _tool_result(messages: list[Any]) -> str | None:
    """The content of the ``tool`` messages ending the conversation, if it ends with any."""
    results: list[str] = []
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "tool":
            break
        results.insert(0, content_text(message.get("content")))
    return " ".join(results) if results else None


def _unanswered(messages: list[Any]) -> str | None:
    """OpenAI's rule: a ``tool`` message answers a call of the assistant message before it."""
    calls: set[Any] = set()
    for message in messages:
        if not isinstance(message, dict):
            continue
        if message.get("role") == "tool":
            if message.get("tool_call_id") not in calls:
                return "Messages with role 'tool' must be a response to a preceding 'tool_calls'."
        else:
            calls = {c.get("id") for c in message.get("tool_calls") or () if isinstance(c, dict)}
    return None


def _frames(
    body: dict[str, Any],
    reply: str | None,
    fault: Fault | None,
    groq: bool,
    plans: ToolPlans,
) -> list[Frame]:
    model = str(body["model"])
    messages = body["messages"]
    budget = body.get("max_completion_tokens") or body.get("max_tokens")
    plan = offered_plan(plans, _offered(body))
    planned = plan is not None
    result = _tool_result(messages) if planned else None
    calling = planned and result is None
    if plan is not None and result is not None:
        reply = plan.reply_with(result)
    said = answer(messages, plan.preamble if plan and calling else reply, budget)
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
    finish = "length" if said.truncated else "stop"
    if plan is not None and calling:
        frames += _tool_call_chunks(chunk, plan.call(f"call_emu{number}"))
        finish = "tool_calls"
    last: dict[str, Any] = {"x_groq": {"id": request_id, "usage": usage}} if groq else {}
    frames.append(chunk({}, finish, **last))
    if include_usage:
        frames.append(event_frame({**base, "choices": [], "usage": usage}))
    frames.append(event_frame("[DONE]"))
    return frames


def _tool_call_chunks(chunk: Callable[..., bytes], call: PlannedCall) -> list[Frame]:
    """A tool call as OpenAI streams it: the id, type and name with empty arguments first,
    then the arguments in pieces, every delta keyed by the call's ``index``."""
    head = {
        "index": 0,
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": ""},
    }
    frames: list[Frame] = [chunk({"tool_calls": [head]})]
    for piece in call.argument_pieces():
        frames.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
    return frames


def _stream_fault(fault: Fault) -> Frame:
    if fault.kind == "drop":
        return CUT
    if fault.kind == "malformed":
        return b'data: {"id": "chatcmpl-broken", "choices": [\n\n'
    return event_frame(fault.body or error_body(500))


async def _complete(
    state: EmulatorState, reply: str | None, groq: bool, plans: ToolPlans, request: Request
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
    problem = _unanswered(body["messages"])
    if problem is not None:
        return _error(400, problem)
    frames = _frames(body, reply, fault, groq, plans)
    return SseResponse(state, recorded, frames, headers={"x-request-id": f"req_{id(recorded)}"})


def routes(
    state: EmulatorState, *, reply: str | None = None, tool_plan: ToolPlans = None
) -> list[BaseRoute]:
    """OpenAI's path and Groq's, served from ``state``; ``reply`` fixes the answer,
    ``tool_plan`` makes the model call a tool the request offers first."""
    return [
        Route(OPENAI_PATH, partial(_complete, state, reply, False, tool_plan), methods=["POST"]),
        Route(GROQ_PATH, partial(_complete, state, reply, True, tool_plan), methods=["POST"]),
    ]


def app(
    state: EmulatorState, *, reply: str | None = None, tool_plan: ToolPlans = None
) -> Starlette:
    """An app serving only the chat completions routes."""
    return starlette_app(routes(state, reply=reply, tool_plan=tool_plan))
