"""Function calling through every cloud adapter's official SDK, against its provider's
emulator speaking the real wire protocol: the tool call streams out of the adapter complete,
and the result sent back reaches the model, which answers with it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

from parley_emulators.base import EmulatorState, running, starlette_app
from parley_emulators.dialogue import ToolPlan
from parley_llm.providers.base import ChatMessage, LlmUsage, ToolCall, ToolCallingProvider, ToolSpec

if TYPE_CHECKING:
    from tests.conftest import Cloud

KEY = "sk-test-emulator-key-0123456789"

WEATHER = ToolSpec(
    "get_weather",
    "The weather in a city now.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
PLAN = ToolPlan(
    "get_weather", {"city": "Paris", "unit": "celsius"}, preamble="Let me look.", answer_prefix=""
)
ASK = [ChatMessage("system", "You are a test."), ChatMessage("user", "Weather in Paris?")]


Planned = tuple["Cloud", EmulatorState, ToolCallingProvider]


@pytest.fixture
async def planned(cloud: Cloud) -> AsyncIterator[Planned]:
    """Each cloud adapter against its emulator, which calls ``get_weather`` when offered."""
    state = EmulatorState(api_key=KEY)
    async with running(starlette_app(cloud.routes(state, tool_plan=PLAN))) as url:
        built = cloud.build(url, KEY, 0, 5.0)
        assert isinstance(built, ToolCallingProvider)
        try:
            yield cloud, state, built
        finally:
            await built.aclose()


def _tools_sent(cloud: Cloud, body: dict[str, Any]) -> list[str]:
    tools = body["tools"]
    assert isinstance(tools, list)
    if cloud.name == "anthropic":
        return [t["name"] for t in tools]
    return [t["function"]["name"] for t in tools]


async def test_a_tool_call_streams_out_whole_and_its_result_reaches_the_model(
    planned: Planned,
) -> None:
    cloud, state, provider = planned
    usage = LlmUsage()
    items = [i async for i in provider.stream_tools(ASK, 100, [WEATHER], usage=usage)]

    text = "".join(i for i in items if isinstance(i, str))
    calls = [i for i in items if isinstance(i, ToolCall)]
    assert text == "Let me look."
    assert [c.name for c in calls] == ["get_weather"]
    assert json.loads(calls[0].arguments) == {"city": "Paris", "unit": "celsius"}
    assert calls[0].id
    assert usage.finish_reason == "tool_calls"
    first = state.last(cloud.path).body
    assert _tools_sent(cloud, first) == ["get_weather"]

    result = '{"temperature": 21, "sky": "clear"}'
    follow_up = [
        *ASK,
        ChatMessage("assistant", text, tool_calls=tuple(calls)),
        ChatMessage("tool", result, tool_call_id=calls[0].id),
    ]
    usage = LlmUsage()
    answer = [i async for i in provider.stream_tools(follow_up, 100, [WEATHER], usage=usage)]

    assert "".join(str(i) for i in answer) == result
    assert usage.finish_reason == "stop"
    sent = state.last(cloud.path).body["messages"]
    if cloud.name == "anthropic":
        assert sent[-2]["content"][-1] == {
            "type": "tool_use",
            "id": calls[0].id,
            "name": "get_weather",
            "input": {"city": "Paris", "unit": "celsius"},
        }
        block = sent[-1]["content"][0]
        assert (block["type"], block["tool_use_id"], block["content"]) == (
            "tool_result",
            calls[0].id,
            result,
        )
    else:
        assert sent[-2]["tool_calls"][0]["id"] == calls[0].id
        assert sent[-1] == {"role": "tool", "tool_call_id": calls[0].id, "content": result}


async def test_without_tools_the_plain_stream_is_unchanged(
    planned: Planned,
) -> None:
    cloud, state, provider = planned
    text = "".join([d async for d in provider.stream(ASK, 100)])

    assert text == "You said: Weather in Paris?"
    assert "tools" not in state.last(cloud.path).body
