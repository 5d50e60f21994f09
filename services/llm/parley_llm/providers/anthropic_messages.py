"""Claude through Anthropic's Messages API, streamed with the official ``anthropic`` SDK.

Prompt caching: the system prompt and the conversation so far end in ``cache_control``
breakpoints, so each turn reads the previous turn's prefix from Anthropic's cache (billed at
a tenth) instead of paying for the whole history again; prompts shorter than the model's
minimum cacheable length are simply not cached. The SDK retries 429/5xx/529 before the
stream starts (honouring ``retry-after``); nothing is retried once a token was yielded, and
closing the generator closes the HTTP response, which is how Anthropic cancels.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Sequence
from typing import Any, Literal, Protocol

import anthropic
import httpx2
from anthropic.types import (
    AssistantMessageParam,
    CacheControlEphemeralParam,
    InputJSONDelta,
    MessageParam,
    RawContentBlockDeltaEvent,
    RawContentBlockStartEvent,
    RawContentBlockStopEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    TextBlockParam,
    TextDelta,
    ToolParam,
    ToolResultBlockParam,
    ToolUseBlock,
    ToolUseBlockParam,
    UserMessageParam,
)

from parley_common.vendor_errors import SdkErrors, Vendor
from parley_llm.providers.base import ChatMessage, LlmUsage, StreamsThroughTools, ToolCall, ToolSpec

VENDOR = Vendor("anthropic", "Anthropic", "ANTHROPIC_API_KEY", "LLM")
SDK_ERRORS = SdkErrors.stainless(anthropic, httpx2)
_CONNECT_TIMEOUT_S = 5.0
_CACHE: CacheControlEphemeralParam = {"type": "ephemeral"}
# Anthropic's stop reasons in the words LlmUsage uses.
_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}
_Block = TextBlockParam | ToolUseBlockParam | ToolResultBlockParam


class _TokenCounts(Protocol):
    """``message_start``'s usage and ``message_delta``'s (cumulative) usage."""

    @property
    def input_tokens(self) -> int | None: ...

    @property
    def output_tokens(self) -> int: ...

    @property
    def cache_creation_input_tokens(self) -> int | None: ...

    @property
    def cache_read_input_tokens(self) -> int | None: ...


def _tool_input(arguments: str) -> dict[str, Any]:
    """A call's arguments as the object Anthropic wants back (the model's own text, which
    the runner refused if it was not an object, so ``{}`` then)."""
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _blocks(message: ChatMessage) -> list[_Block]:
    """The content blocks of one non-system message (none for a blank one)."""
    if message.role == "tool":
        return [
            ToolResultBlockParam(
                type="tool_result",
                tool_use_id=message.tool_call_id or "",
                content=message.content,
                is_error=message.is_error,
            )
        ]
    blocks: list[_Block] = []
    if message.content.strip():
        blocks.append(TextBlockParam(type="text", text=message.content))
    blocks.extend(
        ToolUseBlockParam(type="tool_use", id=c.id, name=c.name, input=_tool_input(c.arguments))
        for c in message.tool_calls
    )
    return blocks


def request_parts(
    messages: Sequence[ChatMessage],
) -> tuple[list[TextBlockParam], list[MessageParam]]:
    """The ``system`` blocks and ``messages`` of a request, with cache breakpoints at the end
    of the system prompt and at the end of the conversation.

    System messages join into the one system prompt; consecutive turns of one speaker become
    one message of several blocks (tool results are the user's: they answer the assistant's
    ``tool_use`` blocks); blank turns are dropped (the API refuses empty text), and so are
    assistant turns before the first user turn (a conversation starts with the user).
    """
    system_text = "\n".join(m.content for m in messages if m.role == "system" and m.content.strip())
    turns: list[tuple[Literal["user", "assistant"], list[_Block]]] = []
    for message in messages:
        if message.role == "system":
            continue
        blocks = _blocks(message)
        role: Literal["user", "assistant"] = "assistant" if message.role == "assistant" else "user"
        if not blocks or (not turns and role == "assistant"):
            continue
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(blocks)
        else:
            turns.append((role, blocks))
    if turns:
        turns[-1][1][-1]["cache_control"] = _CACHE
    system = [TextBlockParam(type="text", text=system_text, cache_control=_CACHE)]
    wire: list[MessageParam] = [
        UserMessageParam(role="user", content=blocks)
        if role == "user"
        else AssistantMessageParam(role="assistant", content=blocks)
        for role, blocks in turns
    ]
    return (system if system_text else []), wire


def _wire_tools(tools: Sequence[ToolSpec]) -> list[ToolParam]:
    return [
        ToolParam(
            name=t.name,
            description=t.description,
            input_schema=dict(t.parameters),
        )
        for t in tools
    ]


def _record(counts: _TokenCounts, usage: LlmUsage) -> None:
    if counts.cache_read_input_tokens is not None:
        usage.cached_input_tokens = counts.cache_read_input_tokens
    if counts.cache_creation_input_tokens is not None:
        usage.cache_write_tokens = counts.cache_creation_input_tokens
    if counts.input_tokens is not None:
        # Anthropic counts only the uncached part as input; LlmUsage counts the whole prompt.
        usage.input_tokens = (
            counts.input_tokens + (usage.cached_input_tokens or 0) + (usage.cache_write_tokens or 0)
        )
    usage.output_tokens = counts.output_tokens


class AnthropicProvider(StreamsThroughTools):
    """Streams answers from a Claude model."""

    name = "anthropic"

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None,
        model: str,
        timeout_s: float,
        max_retries: int,
    ) -> None:
        self.default_model = model
        self._timeout_s = timeout_s
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=base_url,
            timeout=httpx2.Timeout(timeout_s, connect=min(timeout_s, _CONNECT_TIMEOUT_S)),
            max_retries=max_retries,
        )

    async def aclose(self) -> None:
        """Close the SDK client's connection pool (at shutdown)."""
        await self._client.close()

    async def stream_tools(
        self,
        messages: Sequence[ChatMessage],
        max_tokens: int,
        tools: Sequence[ToolSpec],
        *,
        model: str | None = None,
        usage: LlmUsage | None = None,
    ) -> AsyncGenerator[str | ToolCall, None]:
        """Yield text deltas, and each tool call as soon as its ``tool_use`` block closes
        (see ``ToolCallingProvider.stream_tools``)."""
        chosen = model or self.default_model
        if usage is not None:
            usage.model = chosen
        system, turns = request_parts(messages)
        # The tool_use blocks still streaming their input, by block index.
        pending: dict[int, tuple[ToolUseBlock, list[str]]] = {}
        with SDK_ERRORS.translated(VENDOR, model=chosen, timeout_s=self._timeout_s):
            events = await self._client.messages.create(
                model=chosen,
                max_tokens=max_tokens,
                system=system or anthropic.omit,
                messages=turns,
                stream=True,
                tools=_wire_tools(tools) if tools else anthropic.omit,
            )
            async with events:
                async for event in events:
                    if isinstance(event, RawContentBlockDeltaEvent):
                        if isinstance(event.delta, TextDelta) and event.delta.text:
                            yield event.delta.text
                        elif isinstance(event.delta, InputJSONDelta) and event.index in pending:
                            pending[event.index][1].append(event.delta.partial_json)
                    elif isinstance(event, RawContentBlockStartEvent):
                        if isinstance(event.content_block, ToolUseBlock):
                            pending[event.index] = (event.content_block, [])
                    elif isinstance(event, RawContentBlockStopEvent):
                        if event.index in pending:
                            block, parts = pending.pop(event.index)
                            yield ToolCall(block.id, block.name, "".join(parts) or "{}")
                    elif usage is None:
                        continue
                    elif isinstance(event, RawMessageStartEvent):
                        usage.model = event.message.model or chosen
                        _record(event.message.usage, usage)
                    elif isinstance(event, RawMessageDeltaEvent):
                        _record(event.usage, usage)
                        reason = event.delta.stop_reason
                        if reason is not None:
                            usage.finish_reason = _FINISH.get(reason, reason)
