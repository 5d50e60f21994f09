"""The answer loop with an in-memory model that calls tools: each round's results go back to
it, the usage of every model call adds up, a model that never stops calling is cut off after
``MAX_ROUNDS`` calls, and closing the answer while a tool runs cancels the tool."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from parley_llm.providers.base import ChatMessage, LlmUsage, ToolCall, ToolSpec
from parley_llm.tools import FILLER, Toolbox, ToolOutcome, ToolTurn
from parley_llm.tools.loop import MAX_ROUNDS, stream_answer

ECHO = ToolSpec("echo", "Echo.", {"type": "object"})
TURN = ToolTurn(1, "")


@dataclass
class CallingModel:
    """Calls ``echo`` for its first ``calls`` rounds, then answers with what it was given."""

    calls: int
    name: str = "calling"
    seen: list[list[ChatMessage]] = field(default_factory=list)

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        max_tokens: int,
        *,
        model: str | None = None,
        usage: LlmUsage | None = None,
    ) -> AsyncGenerator[str, None]:
        yield "unused"

    async def stream_tools(
        self,
        messages: Sequence[ChatMessage],
        max_tokens: int,
        tools: Sequence[ToolSpec],
        *,
        model: str | None = None,
        usage: LlmUsage | None = None,
    ) -> AsyncGenerator[str | ToolCall, None]:
        self.seen.append(list(messages))
        if usage is not None:
            usage.input_tokens, usage.output_tokens = 10, 2
        if len(self.seen) <= self.calls:
            if usage is not None:
                usage.finish_reason = "tool_calls"
            yield ToolCall(f"c{len(self.seen)}", "echo", json.dumps({"n": len(self.seen)}))
            return
        if usage is not None:
            usage.finish_reason = "stop"
        yield "Results: " + ", ".join(m.content for m in messages if m.role == "tool")


@dataclass
class Echo:
    delay_s: float = 0.0
    spec: ToolSpec = ECHO
    timeout_s: float = 30.0
    cancelled: bool = False

    async def run(self, arguments: Mapping[str, Any]) -> ToolOutcome:
        try:
            await asyncio.sleep(self.delay_s)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return ToolOutcome(f"n={arguments['n']}")


async def test_each_rounds_results_go_back_and_the_usage_adds_up() -> None:
    model = CallingModel(calls=2)
    usage = LlmUsage()

    said = [
        d
        async for d in stream_answer(
            model, [ChatMessage("user", "go")], 50, Toolbox([Echo()]), TURN, usage=usage
        )
    ]

    assert said == ["Results: n=1, n=2"]
    assert len(model.seen) == 3
    last = model.seen[-1]
    assert [m.role for m in last] == ["user", "assistant", "tool", "assistant", "tool"]
    assert last[1].tool_calls[0].id == "c1"
    assert last[2].tool_call_id == "c1"
    assert (usage.input_tokens, usage.output_tokens, usage.finish_reason) == (30, 6, "stop")


async def test_a_model_that_keeps_calling_is_cut_off() -> None:
    model = CallingModel(calls=100)
    echo = Echo()
    records: list[Any] = []

    said = [
        d
        async for d in stream_answer(
            model, [ChatMessage("user", "go")], 50, Toolbox([echo], record=records.append), TURN
        )
    ]

    assert said == []
    assert len(model.seen) == MAX_ROUNDS
    assert len(records) == MAX_ROUNDS - 1  # the last round's call is not run


async def test_closing_the_answer_while_a_tool_runs_cancels_it() -> None:
    echo = Echo(delay_s=30)
    answer = stream_answer(
        CallingModel(calls=1), [ChatMessage("user", "go")], 50, Toolbox([echo]), TURN
    )

    async with contextlib.aclosing(answer):
        first = await asyncio.wait_for(anext(answer), 5)  # the filler, once the tool is slow
        assert first == FILLER
    assert echo.cancelled
