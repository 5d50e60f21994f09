"""One trace per turn: a spoken turn through the gateway and the STT, dialogue and TTS
workers yields one trace, rooted at the STT's ``turn`` span, whose children come from
every service; an interrupted turn carries the barge-in as an event of its playout span."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bench.audio import silence, speak
from bench.call import Call
from parley_common.testing import eventually
from parley_llm.providers.scripted import ScriptedLlmProvider
from tests.conversation.conftest import SCRIPTED, one_spoken_turn
from tests.conversation.test_pipeline import LONG_REPLY

CHILDREN = {
    "stt.final": "stt",
    "llm.stream": "llm",
    "tts.synthesize": "tts",
    "gateway.playout": "gateway",
}


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    """Every span of this process, kept in memory (the in-process services all trace into
    the one global provider, as each process does with its own)."""
    exporter = InMemorySpanExporter()
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        provider = current
    else:
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()  # later tests' spans are not kept


def _of_session(exporter: InMemorySpanExporter, sid: str) -> list[ReadableSpan]:
    roots = [
        s
        for s in exporter.get_finished_spans()
        if s.name == "turn" and (s.attributes or {}).get("parley.session_id") == sid
    ]
    if not roots:
        return []
    trace_ids = {r.context.trace_id for r in roots}
    return [s for s in exporter.get_finished_spans() if s.context.trace_id in trace_ids]


async def test_a_spoken_turn_is_one_trace_across_the_four_services(
    platform_url: str, spans: InMemorySpanExporter
) -> None:
    sid = await one_spoken_turn(platform_url)

    def complete() -> bool:
        names = {s.name for s in _of_session(spans, sid)}
        return set(CHILDREN) <= names

    await eventually(complete, 10)
    found = _of_session(spans, sid)
    roots = [s for s in found if s.name == "turn"]
    assert len(roots) == 1, [s.name for s in found]
    root = roots[0]
    assert root.parent is None
    assert (root.attributes or {})["parley.service"] == "stt"
    for name, service in CHILDREN.items():
        [child] = [s for s in found if s.name == name]
        assert child.context.trace_id == root.context.trace_id
        assert child.parent is not None
        assert child.parent.span_id == root.context.span_id, name
        assert (child.attributes or {})["parley.service"] == service
    llm = next(s for s in found if s.name == "llm.stream")
    attributes = dict(llm.attributes or {})
    assert attributes["gen_ai.system"] == "scripted"
    assert int(str(attributes["gen_ai.usage.output_tokens"])) > 0


async def test_a_barge_in_is_an_event_of_the_interrupted_turns_playout(
    platform_url: str, spans: InMemorySpanExporter, scripted_llm: ScriptedLlmProvider
) -> None:
    scripted_llm.reply, scripted_llm.delta_delay_s = LONG_REPLY, 0.03
    call = await Call.start(platform_url, **{**SCRIPTED, "interrupt_sensitivity": "high"})
    try:
        await call.send_json({"type": "text_message", "text": "tell me a long story"})
        start = await call.wait_for("audio_start")
        await asyncio.sleep(0.8)  # the assistant is talking
        scripted_llm.reply = "Short answer."
        await call.say(await speak("Stop, what time is it?") + silence(800))
        interrupted = await call.wait_for("interrupted", within_s=10)
        assert interrupted["data"]["turn_id"] == start["data"]["turn_id"]
    finally:
        await call.close()

    def cut_playout() -> list[ReadableSpan]:
        return [
            s
            for s in spans.get_finished_spans()
            if s.name == "gateway.playout"
            and (s.attributes or {}).get("parley.turn_id") == start["data"]["turn_id"]
            and (s.attributes or {}).get("parley.cancelled")
            and any(e.name == "barge_in" for e in s.events)
        ]

    await eventually(lambda: bool(cut_playout()), 10)
    [playout] = cut_playout()
    # The typed turn's root came from the dialogue worker.
    roots = [
        s
        for s in spans.get_finished_spans()
        if s.name == "turn" and s.context.trace_id == playout.context.trace_id
    ]
    assert len(roots) == 1
    assert (roots[0].attributes or {})["parley.service"] == "llm"
