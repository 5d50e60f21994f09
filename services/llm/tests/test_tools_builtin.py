"""The built-in tools and how the toolbox runs a call, without a model: the time in the
user's zone, the call-ending and text-mode effects, the knowledge-search seam, refusals of
unknown tools and malformed arguments, and the ``tool.call`` span under the turn's trace."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import datetime

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from parley_common.contracts.tools import Builtin
from parley_common.observability import tracing
from parley_llm.providers.base import ChatMessage, ToolCall
from parley_llm.providers.scripted import ScriptedLlmProvider
from parley_llm.tools import (
    KnowledgeSearch,
    Toolbox,
    ToolCallRecord,
    ToolEffect,
    ToolTurn,
    builtin_tool,
)
from parley_llm.tools.loop import stream_answer

TURN = ToolTurn(3, "")


def _box(
    *names: Builtin,
    search: KnowledgeSearch | None = None,
    record: Callable[[ToolCallRecord], None] | None = None,
    on_effect: Callable[[ToolEffect, int], Awaitable[None]] | None = None,
) -> Toolbox:
    """The built-ins ``names`` for a user in Tokyo."""
    tools = [builtin_tool(n, timezone="Asia/Tokyo", knowledge=search) for n in names]
    return Toolbox(tools, record=record, on_effect=on_effect)


async def _run(box: Toolbox, name: str, arguments: str = "{}") -> ToolCallRecord:
    return await box.run(ToolCall("call-1", name, arguments), TURN)


async def test_the_time_is_told_in_the_users_zone_or_the_one_asked_for() -> None:
    box = _box(Builtin.CURRENT_TIME)

    own = json.loads((await _run(box, "current_time")).result)
    paris = json.loads((await _run(box, "current_time", '{"timezone": "Europe/Paris"}')).result)
    wrong = await _run(box, "current_time", '{"timezone": "Mars/Olympus"}')

    assert own["timezone"] == "Asia/Tokyo"
    offset = datetime.fromisoformat(own["iso"]).utcoffset()
    assert offset is not None
    assert offset.total_seconds() == 9 * 3600
    assert paris["timezone"] == "Europe/Paris"
    assert wrong.status == "error"
    assert "unknown time zone" in json.loads(wrong.result)["error"]


async def test_ending_the_call_and_switching_to_text_are_effects_the_session_hears() -> None:
    heard: list[tuple[ToolEffect, int]] = []
    records: list[ToolCallRecord] = []

    async def on_effect(effect: ToolEffect, turn_id: int) -> None:
        heard.append((effect, turn_id))

    box = _box(Builtin.END_CALL, Builtin.SWITCH_TO_TEXT, record=records.append, on_effect=on_effect)

    await _run(box, "switch_to_text")
    await _run(box, "end_call")

    assert heard == [("switch_to_text", 3), ("end_call", 3)]
    assert [(r.name, r.status, r.effect, r.turn_id) for r in records] == [
        ("switch_to_text", "ok", "switch_to_text", 3),
        ("end_call", "ok", "end_call", 3),
    ]


async def test_knowledge_search_uses_the_seam_and_says_when_there_is_none() -> None:
    asked: list[tuple[str, int]] = []

    async def search(query: str, k: int) -> Sequence[str]:
        asked.append((query, k))
        return ["The shop opens at nine."]

    searching = _box(Builtin.KNOWLEDGE_SEARCH, search=search)
    found = await _run(searching, "knowledge_search", '{"query": "opening hours"}')
    missing = await _run(_box(Builtin.KNOWLEDGE_SEARCH), "knowledge_search", '{"query": "x"}')
    no_query = await _run(searching, "knowledge_search")

    assert json.loads(found.result) == {"passages": ["The shop opens at nine."]}
    assert asked == [("opening hours", 4)]
    assert missing.status == "error"
    assert "not available" in json.loads(missing.result)["error"]
    assert no_query.status == "refused"
    assert "query" in json.loads(no_query.result)["error"]


async def test_unknown_tools_and_malformed_arguments_are_refused_not_run() -> None:
    box = _box(Builtin.CURRENT_TIME)

    unknown = await _run(box, "launch_rockets")
    broken = await _run(box, "current_time", '{"timezone": ')
    listed = await _run(box, "current_time", '["Europe/Paris"]')

    assert (unknown.status, unknown.arguments) == ("refused", {})
    assert "no tool named launch_rockets" in json.loads(unknown.result)["error"]
    assert (broken.status, broken.arguments) == ("refused", None)
    assert listed.status == "refused"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    current = trace.get_tracer_provider()
    provider = current if isinstance(current, TracerProvider) else TracerProvider()
    if provider is not current:
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


async def test_each_call_is_a_tool_call_span_of_the_turn(spans: InMemorySpanExporter) -> None:
    root = tracing.start_turn("llm", "session-1")
    turn = ToolTurn(5, tracing.traceparent_of(root))
    root.end()

    await _box(Builtin.CURRENT_TIME).run(ToolCall("c-9", "current_time", "{}"), turn)

    [span] = [s for s in spans.get_finished_spans() if s.name == "tool.call"]
    assert span.parent is not None
    assert span.parent.span_id == root.get_span_context().span_id
    expected = {
        "gen_ai.tool.name": "current_time",
        "gen_ai.tool.call.id": "c-9",
        "parley.turn_id": 5,
        "parley.tool.status": "ok",
    }
    attributes = dict(span.attributes or {})
    assert {k: attributes.get(k) for k in expected} == expected


async def test_a_model_that_cannot_call_tools_streams_as_before() -> None:
    model = ScriptedLlmProvider("Plain answer.")
    box = _box(Builtin.CURRENT_TIME)

    said = [d async for d in stream_answer(model, [ChatMessage("user", "hi")], 50, box, TURN)]

    assert "".join(said) == "Plain answer."
    assert model.runs[0].finished
