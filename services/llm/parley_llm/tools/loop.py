"""An answer that may call tools: stream from the model; when it calls tools, run them,
give it their results and stream again, until it answers in words (at most ``MAX_ROUNDS``
model calls). The caller sees only text.

The tools run in a task this generator owns: closing or cancelling the answer (a barge-in)
cancels them at once, and a tool slower than ``$PARLEY_TOOL_FILLER_S`` gets a filler
sentence spoken first so the line is not silent, unless the model already said something
before its call. A provider that cannot call tools, or a session without tools, streams as
it always did.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Sequence

from parley_common.fallback import deadline_env
from parley_llm.providers.base import (
    ChatMessage,
    LlmProvider,
    LlmUsage,
    ToolCall,
    ToolCallingProvider,
)
from parley_llm.tools.base import ToolCallRecord
from parley_llm.tools.toolbox import Toolbox, ToolTurn

__all__ = ["FILLER", "MAX_ROUNDS", "stream_answer"]

MAX_ROUNDS = 4
FILLER = "Let me check that. "
FILLER_AFTER_S = deadline_env("PARLEY_TOOL_FILLER_S", 1.0)


def _add(total: LlmUsage | None, part: LlmUsage) -> None:
    """Count one model call of the answer into the answer's usage."""
    if total is None:
        return
    total.model = part.model or total.model
    total.finish_reason = part.finish_reason or total.finish_reason
    for name in ("input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens"):
        value = getattr(part, name)
        if value is not None:
            setattr(total, name, (getattr(total, name) or 0) + value)


async def stream_answer(
    provider: LlmProvider,
    messages: Sequence[ChatMessage],
    max_tokens: int,
    toolbox: Toolbox,
    turn: ToolTurn,
    *,
    model: str | None = None,
    usage: LlmUsage | None = None,
) -> AsyncGenerator[str, None]:
    """Yield the answer's text deltas (a filler among them when a tool is slow), running
    the tools the model calls on the way; ``usage`` adds up every model call."""
    specs = toolbox.specs
    if not specs or not isinstance(provider, ToolCallingProvider):
        plain = provider.stream(messages, max_tokens, model=model, usage=usage)
        async with contextlib.aclosing(plain):
            async for delta in plain:
                yield delta
        return
    conversation = list(messages)
    for attempt in range(MAX_ROUNDS):
        said: list[str] = []
        calls: list[ToolCall] = []
        part = LlmUsage()
        items = provider.stream_tools(conversation, max_tokens, specs, model=model, usage=part)
        try:
            async with contextlib.aclosing(items):
                async for item in items:
                    if isinstance(item, ToolCall):
                        calls.append(item)
                    elif item:
                        said.append(item)
                        yield item
        finally:
            _add(usage, part)
        if not calls or attempt == MAX_ROUNDS - 1:
            # The last round's calls are not run: no model call would read their results.
            return
        running = asyncio.create_task(toolbox.run_all(calls, turn))
        try:
            done, _ = await asyncio.wait({running}, timeout=FILLER_AFTER_S)
            if not done and not said:
                yield FILLER
            records = await running
        finally:
            if not running.done():
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
        conversation += _round(said, calls, records)


def _round(
    said: list[str], calls: list[ToolCall], records: list[ToolCallRecord]
) -> list[ChatMessage]:
    """What the next model call is shown of this round: the calls, then their results."""
    return [
        ChatMessage("assistant", "".join(said), tool_calls=tuple(calls)),
        *(
            ChatMessage("tool", r.result, tool_call_id=r.call_id, is_error=r.status != "ok")
            for r in records
        ),
    ]
