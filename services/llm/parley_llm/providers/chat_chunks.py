"""Reading OpenAI-style chat-completion chunks, whichever SDK parsed them (OpenAI's for
OpenAI and compatible servers, Groq's for Groq): the shapes are the same, the classes not."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from parley_llm.providers.base import ChatMessage, LlmUsage, ToolCall, ToolSpec


class _PromptDetails(Protocol):
    @property
    def cached_tokens(self) -> int | None: ...


class TokenCounts(Protocol):
    """A chunk's ``usage`` (OpenAI: the last chunk; Groq: also ``x_groq.usage``)."""

    @property
    def prompt_tokens(self) -> int: ...

    @property
    def completion_tokens(self) -> int: ...

    @property
    def prompt_tokens_details(self) -> _PromptDetails | None: ...


class _FunctionDelta(Protocol):
    @property
    def name(self) -> str | None: ...

    @property
    def arguments(self) -> str | None: ...


class _ToolCallDelta(Protocol):
    @property
    def index(self) -> int: ...

    @property
    def id(self) -> str | None: ...

    @property
    def function(self) -> _FunctionDelta | None: ...


class _Delta(Protocol):
    @property
    def content(self) -> str | None: ...

    @property
    def tool_calls(self) -> Sequence[_ToolCallDelta] | None: ...


class _Choice(Protocol):
    @property
    def delta(self) -> _Delta: ...

    @property
    def finish_reason(self) -> str | None: ...


class ChatChunk(Protocol):
    """One ``chat.completion.chunk``."""

    @property
    def model(self) -> str: ...

    @property
    def choices(self) -> Sequence[_Choice]: ...

    @property
    def usage(self) -> TokenCounts | None: ...


def _wire_message(message: ChatMessage) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    wire: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        wire["content"] = message.content or None
        wire["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in message.tool_calls
        ]
    return wire


def wire_messages(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """The conversation as the chat-completions ``messages`` array (tool rounds included:
    the assistant's ``tool_calls``, then a ``tool`` message answering each)."""
    return [_wire_message(m) for m in messages]


def wire_tools(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """The chat-completions ``tools`` array."""
    return [
        {
            "type": "function",
            "function": {
                "name": t.name,
                "description": t.description,
                "parameters": dict(t.parameters),
            },
        }
        for t in tools
    ]


@dataclass(slots=True)
class _Pending:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ToolCallDeltas:
    """The tool calls of one streamed answer, put together from their deltas: the first
    delta of a call has its ``id`` and name, the next ones pieces of its arguments, all
    keyed by ``index`` (parallel calls interleave)."""

    _calls: dict[int, _Pending] = field(default_factory=dict)

    def add(self, chunk: ChatChunk) -> None:
        """Take the tool-call deltas of ``chunk``, if it has any."""
        if not chunk.choices:
            return
        for delta in chunk.choices[0].delta.tool_calls or ():
            pending = self._calls.setdefault(delta.index, _Pending())
            pending.id = delta.id or pending.id
            if delta.function is not None:
                pending.name = delta.function.name or pending.name
                if delta.function.arguments:
                    pending.arguments.append(delta.function.arguments)

    def calls(self) -> list[ToolCall]:
        """The complete calls, in index order (a call the stream never named is dropped)."""
        return [
            ToolCall(id=p.id or f"call_{i}", name=p.name, arguments="".join(p.arguments) or "{}")
            for i, p in sorted(self._calls.items())
            if p.name
        ]


def record_counts(counts: TokenCounts | None, usage: LlmUsage | None) -> None:
    """Copy the token counts of a usage object into ``usage`` (prompt tokens include the
    cached ones, as ``LlmUsage`` counts them)."""
    if counts is None or usage is None:
        return
    usage.input_tokens = counts.prompt_tokens
    usage.output_tokens = counts.completion_tokens
    details = counts.prompt_tokens_details
    if details is not None and details.cached_tokens is not None:
        usage.cached_input_tokens = details.cached_tokens


def chunk_text(chunk: ChatChunk, usage: LlmUsage | None) -> str:
    """The text a chunk adds to the answer ("" for role, finish and usage chunks), noting the
    model, the finish reason and the token counts in ``usage`` as they pass."""
    if usage is not None:
        usage.model = chunk.model or usage.model
        record_counts(chunk.usage, usage)
    if not chunk.choices:
        return ""
    choice = chunk.choices[0]
    if usage is not None and choice.finish_reason is not None:
        usage.finish_reason = choice.finish_reason
    return choice.delta.content or ""
