"""Anthropic's Messages API, streamed as Anthropic streams it, prompt cache included.

``POST /v1/messages`` with ``stream: true`` answers SSE events, each with an ``event:`` line:
``message_start`` (usage with the cache counts), ``content_block_start``, ``ping``,
``content_block_delta`` (``text_delta``) per word, ``content_block_stop``, ``message_delta``
(``stop_reason`` and cumulative ``output_tokens``), ``message_stop``. Keys arrive as
``x-api-key`` or ``Authorization: Bearer`` (newer SDKs); ``anthropic-version`` is required.
Errors use ``{"type": "error", "error": {"type", "message"}}`` (529 = ``overloaded_error``).

Prompt caching follows Anthropic's rules closely enough to test an adapter's breakpoints:
at most 4 ``cache_control`` blocks; each breakpoint writes the prefix ending there; a
request reads the longest cached prefix ending at one of its breakpoints or up to 20 blocks
before one. Tokens are words.

The answer is ``reply`` when given, else ``"You said: "`` and the last user message. With a
``ToolPlan`` whose tool the request offers, the model first says the plan's preamble, then
streams a ``tool_use`` block (``input_json_delta`` pieces, ``stop_reason: tool_use``); the
request carrying the ``tool_result`` is answered with the result. Fault
kinds besides HTTP ones, each after the first delta: ``"malformed"`` (an event whose data is
not JSON), ``"drop"`` (the connection cut), ``"stream_error"`` (an ``event: error``, by
default ``overloaded_error``).
"""

from __future__ import annotations

import itertools
import json
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

__all__ = ["MESSAGES_PATH", "app", "error_body", "routes"]

MESSAGES_PATH = "/v1/messages"
MAX_BREAKPOINTS = 4
CACHE_LOOKBACK_BLOCKS = 20

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use this resource."),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}
_ids = itertools.count(1)


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    """Anthropic's error body for ``status``."""
    kind, default = _ERRORS.get(status, ("api_error", "Internal server error"))
    return {"type": "error", "error": {"type": kind, "message": message or default}}


def _error(status: int, message: str | None = None) -> Response:
    return JSONResponse(error_body(status, message), status_code=status)


def _blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every cacheable block in prompt order (system, then messages), as dicts."""
    system = body.get("system")
    blocks: list[dict[str, Any]] = (
        [{"type": "text", "text": system}] if isinstance(system, str) else list(system or [])
    )
    for message in body["messages"]:
        content = message.get("content")
        if isinstance(content, str):
            blocks.append({"type": "text", "text": content, "role": message.get("role")})
        else:
            blocks.extend({**block, "role": message.get("role")} for block in content)
    return blocks


class _PromptCache:
    """The prefixes written by earlier requests, keyed by model and content."""

    def __init__(self) -> None:
        self._written: set[str] = set()

    @staticmethod
    def _key(model: str, blocks: list[dict[str, Any]]) -> str:
        plain = [{k: v for k, v in b.items() if k != "cache_control"} for b in blocks]
        return json.dumps([model, plain], sort_keys=True)

    def use(self, model: str, blocks: list[dict[str, Any]]) -> tuple[int, int, int]:
        """Serve one request: (uncached input, cache write, cache read) tokens."""
        tokens = [count_tokens(content_text([b])) for b in blocks]
        breakpoints = [i for i, b in enumerate(blocks) if b.get("cache_control")]
        hit = -1
        for point in breakpoints:
            for end in range(point, max(-1, point - CACHE_LOOKBACK_BLOCKS - 1), -1):
                if end > hit and self._key(model, blocks[: end + 1]) in self._written:
                    hit = end
                    break
        read = sum(tokens[: hit + 1])
        written_to = max(breakpoints, default=-1)
        write = sum(tokens[hit + 1 : written_to + 1])
        for point in breakpoints:
            self._written.add(self._key(model, blocks[: point + 1]))
        return sum(tokens) - read - write, write, read


def _invalid(request: Request, body: Any) -> str | None:
    """Why the request is refused with 400, if it is."""
    if not request.headers.get("anthropic-version"):
        return "anthropic-version: header is required"
    if not isinstance(body, dict):
        return "Could not parse the JSON body of the request."
    if not body.get("model") or not isinstance(body.get("max_tokens"), int):
        return "model: Field required; max_tokens: Field required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    if body.get("stream") is not True:
        return "This emulator answers streamed requests only ('stream': true)."
    blocks = _blocks(body)
    if any(b.get("type") == "text" and not str(b.get("text", "")).strip() for b in blocks):
        return "messages: text content blocks must be non-empty"
    if sum(1 for b in blocks if b.get("cache_control")) > MAX_BREAKPOINTS:
        return f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided."
    return _unanswered_tool_result(messages)


def _unanswered_tool_result(messages: list[Any]) -> str | None:
    """Anthropic's rule: each ``tool_result`` answers a ``tool_use`` of the message before."""
    for before, message in itertools.pairwise(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        earlier = before.get("content") if isinstance(before, dict) else None
        used = {b.get("id") for b in earlier or () if isinstance(b, dict)}
        for block in content:
            if not isinstance(block, dict) or block.get("type") != "tool_result":
                continue
            if block.get("tool_use_id") not in used:
                return "messages: tool_result blocks must answer a tool_use of the message before"
    return None


def _tool_result(body: dict[str, Any]) -> str | None:
    """The text of the tool results the last (user) message carries, if it carries any."""
    content = body["messages"][-1].get("content")
    if not isinstance(content, list):
        return None
    results = [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]
    if not results:
        return None
    return " ".join(
        c if isinstance(c := r.get("content"), str) else content_text(c) for r in results
    )


def _text_block(index: int, deltas: list[str], fault: Fault | None) -> list[Frame]:
    frames: list[Frame] = [
        event_frame(
            {
                "type": "content_block_start",
                "index": index,
                "content_block": {"type": "text", "text": ""},
            },
            "content_block_start",
        ),
        event_frame({"type": "ping"}, "ping"),
    ]
    for number, text in enumerate(deltas):
        delta = {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "text_delta", "text": text},
        }
        frames.append(event_frame(delta, "content_block_delta"))
        if number == 0 and fault is not None:
            frames.append(_stream_fault(fault))
    frames.append(event_frame({"type": "content_block_stop", "index": index}, "content_block_stop"))
    return frames


def _tool_use_block(index: int, call: PlannedCall) -> list[Frame]:
    """A ``tool_use`` block as Anthropic streams it: empty input at the start, then the
    input's JSON in ``input_json_delta`` pieces."""
    block = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
    frames: list[Frame] = [
        event_frame(
            {"type": "content_block_start", "index": index, "content_block": block},
            "content_block_start",
        )
    ]
    for piece in call.argument_pieces():
        delta = {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "input_json_delta", "partial_json": piece},
        }
        frames.append(event_frame(delta, "content_block_delta"))
    frames.append(event_frame({"type": "content_block_stop", "index": index}, "content_block_stop"))
    return frames


def _frames(
    body: dict[str, Any],
    reply: str | None,
    fault: Fault | None,
    cache: _PromptCache,
    plans: ToolPlans,
) -> list[Frame]:
    offered = [str(t.get("name")) for t in body.get("tools") or () if isinstance(t, dict)]
    plan = offered_plan(plans, offered)
    planned = plan is not None
    result = _tool_result(body) if planned else None
    calling = planned and result is None
    if plan is not None and result is not None:
        reply = plan.reply_with(result)
    said_text = plan.preamble if plan is not None and calling else reply
    said = answer(body["messages"], said_text, body["max_tokens"])
    fresh, write, read = cache.use(str(body["model"]), _blocks(body))
    start = {
        "type": "message_start",
        "message": {
            "id": f"msg_emu{next(_ids)}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": fresh,
                "cache_creation_input_tokens": write,
                "cache_read_input_tokens": read,
                "output_tokens": 1,
            },
        },
    }
    frames: list[Frame] = [event_frame(start, "message_start")]
    if said.deltas or not calling:
        frames += _text_block(0, said.deltas, fault)
    stop = "max_tokens" if said.truncated else "end_turn"
    if plan is not None and calling:
        frames += _tool_use_block(1 if said.deltas else 0, plan.call(f"toolu_emu{next(_ids)}"))
        stop = "tool_use"
    frames += [
        event_frame(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": len(said.deltas)},
            },
            "message_delta",
        ),
        event_frame({"type": "message_stop"}, "message_stop"),
    ]
    return frames


def _stream_fault(fault: Fault) -> Frame:
    if fault.kind == "drop":
        return CUT
    if fault.kind == "malformed":
        return b'event: content_block_delta\ndata: {"type": "content_block_delta", "delta":\n\n'
    return event_frame(fault.body or error_body(529), "error")


def _authorised(state: EmulatorState, request: Request) -> bool:
    if not state.api_key:
        return True
    return state.api_key in (
        request.headers.get("x-api-key"),
        request.headers.get("authorization", "").removeprefix("Bearer "),
    )


async def _messages(
    state: EmulatorState,
    reply: str | None,
    cache: _PromptCache,
    plans: ToolPlans,
    request: Request,
) -> Response:
    recorded, body = await record_json(state, request)
    if not _authorised(state, request):
        return _error(401)
    fault = state.next_fault()
    if fault is not None and fault.kind == "http":
        return fault_response(fault, error_body)
    problem = _invalid(request, body)
    if problem is not None:
        return _error(400, problem)
    frames = _frames(body, reply, fault, cache, plans)
    return SseResponse(state, recorded, frames, headers={"request-id": f"req_emu{id(recorded)}"})


def routes(
    state: EmulatorState, *, reply: str | None = None, tool_plan: ToolPlans = None
) -> list[BaseRoute]:
    """The Messages route served from ``state``, with its own prompt cache; ``reply`` fixes
    the answer, ``tool_plan`` makes the model call a tool the request offers first."""
    handler = partial(_messages, state, reply, _PromptCache(), tool_plan)
    return [Route(MESSAGES_PATH, handler, methods=["POST"])]


def app(
    state: EmulatorState, *, reply: str | None = None, tool_plan: ToolPlans = None
) -> Starlette:
    """An app serving only the Messages route."""
    return starlette_app(routes(state, reply=reply, tool_plan=tool_plan))
