"""Durable events from JetStream land in the analytics tables, exactly once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
from prometheus_client import REGISTRY

from parley_analytics.consumer import DURABLE, consume, event_id
from parley_analytics.recorder import Recorder
from parley_common.bus import Bus, MessageMeta
from parley_common.contracts import subjects
from parley_common.contracts.bus import LatencyStages
from parley_common.contracts.events import (
    ErrorRecorded,
    LatencyRecorded,
    ProviderSwitched,
    SessionEnded,
    UsageRecorded,
)
from parley_common.contracts.session import SessionConfig, SttProvider, TtsProvider
from parley_common.contracts.subjects import EVENTS_STREAM, EVENTS_SUBJECTS
from parley_common.testing import eventually


async def _session(pool: asyncpg.Pool, config: SessionConfig) -> str:
    sid = uuid.uuid4()
    await pool.execute(
        """INSERT INTO voice_sessions (id, user_id, config, stt_provider, llm_provider,
               tts_provider, response_style, interrupt_sensitivity)
           VALUES ($1, 'analytics-user', $2, $3, 'local', $4, 'concise', 'high')""",
        sid,
        config.model_dump(mode="json"),
        config.stt_provider.value,
        config.tts_provider.value,
    )
    await pool.execute(
        """INSERT INTO voice_transcripts (session_id, turn_id, role, text, confidence)
           VALUES ($1, 1, 'user', 'hello there', 0.8), ($1, 1, 'assistant', 'hi', NULL)""",
        sid,
    )
    return str(sid)


async def test_events_become_usage_latency_errors_and_a_session_summary(
    bus: Bus, pool: asyncpg.Pool
) -> None:
    config = SessionConfig(stt_provider=SttProvider.DEEPGRAM, tts_provider=TtsProvider.OPENAI)
    sid = await _session(pool, config)
    now = datetime.now(UTC)
    meta = MessageMeta(session_id=sid)
    await bus.ensure_stream(EVENTS_STREAM, [EVENTS_SUBJECTS])
    events: list[UsageRecorded | LatencyRecorded | ErrorRecorded | SessionEnded] = [
        UsageRecorded(
            session_id=sid,
            at=now,
            service="stt",
            provider="deepgram",
            quantity=60.0,
            unit="audio_seconds",
        ),
        UsageRecorded(
            session_id=sid,
            at=now,
            service="tts",
            provider="openai",
            quantity=1000,
            unit="characters",
        ),
        LatencyRecorded(
            session_id=sid,
            at=now,
            turn_id=1,
            stages=LatencyStages(stt_final_ms=100, voice_to_voice_ms=400),
        ),
        LatencyRecorded(
            session_id=sid, at=now, turn_id=1, stages=LatencyStages(tts_first_byte_ms=50)
        ),
        ErrorRecorded(session_id=sid, at=now, service="tts", code="provider_error", message="boom"),
        SessionEnded(
            session_id=sid,
            at=now,
            user_id="analytics-user",
            config=config,
            duration_seconds=61.5,
            total_turns=1,
            interruptions_count=0,
        ),
    ]
    for event in events:
        await bus.js_publish(subjects.event(event.type), event, meta)

    stopping = asyncio.Event()
    task = asyncio.create_task(consume(bus, Recorder(pool), stopping))
    try:

        async def summary_written() -> bool:
            return bool(
                await pool.fetchval(
                    "SELECT count(*) FROM voice_analytics WHERE session_id = $1", uuid.UUID(sid)
                )
            )

        await eventually(summary_written)
    finally:
        stopping.set()
        await asyncio.wait_for(task, 5)

    row = await pool.fetchrow("SELECT * FROM voice_analytics WHERE session_id=$1", uuid.UUID(sid))
    assert row is not None
    assert row["duration_seconds"] == 61.5
    assert row["audio_seconds_processed"] == 60.0
    assert row["characters_synthesized"] == 1000
    assert row["characters_transcribed"] == len("hello there")
    assert row["avg_voice_to_voice_ms"] == 400
    assert row["avg_confidence"] == 0.8
    # Deepgram $0.0125/min for a minute + OpenAI TTS $15 per million characters.
    assert float(row["estimated_cost_usd"]) == round(0.0125 + 0.015, 6)
    latency = await pool.fetchrow(
        "SELECT * FROM voice_turn_latency WHERE session_id=$1", uuid.UUID(sid)
    )
    assert latency is not None
    assert (latency["stt_final_ms"], latency["tts_first_byte_ms"]) == (100, 50)
    assert (
        await pool.fetchval("SELECT count(*) FROM voice_errors WHERE session_id=$1", uuid.UUID(sid))
        == 1
    )


async def test_redelivered_events_are_not_counted_twice(pool: asyncpg.Pool) -> None:
    sid = await _session(pool, SessionConfig())
    recorder = Recorder(pool)
    usage = UsageRecorded(
        session_id=sid,
        at=datetime.now(UTC),
        service="tts",
        provider="local",
        quantity=10,
        unit="characters",
    )
    for _ in range(3):
        await recorder.record(usage, "PARLEY_EVENTS:dup-1")
    assert (
        await pool.fetchval("SELECT count(*) FROM voice_usage WHERE session_id=$1", uuid.UUID(sid))
        == 1
    )


async def test_a_provider_switch_and_the_usage_model_are_recorded(pool: asyncpg.Pool) -> None:
    sid = await _session(pool, SessionConfig())
    now = datetime.now(UTC)
    recorder = Recorder(pool)
    switched = ProviderSwitched(
        session_id=sid,
        at=now,
        service="stt",
        provider="deepgram",
        fallback="local",
        reason="provider_failed",
    )
    usage = UsageRecorded(
        session_id=sid,
        at=now,
        service="llm",
        provider="anthropic",
        model="claude-haiku-5-5",
        quantity=42,
        unit="output_tokens",
    )
    await recorder.record(switched, f"test-switch:{sid}:0")
    await recorder.record(usage, f"test-switch:{sid}:1")
    await recorder.record(switched, f"test-switch:{sid}:0")  # redelivered: written once

    errors = await pool.fetch(
        "SELECT service, code, message FROM voice_errors WHERE session_id = $1",
        uuid.UUID(sid),
    )
    assert [tuple(r) for r in errors] == [
        ("stt", "provider_fallback", "deepgram -> local: provider_failed")
    ]
    model = await pool.fetchval(
        "SELECT model FROM voice_usage WHERE session_id = $1", uuid.UUID(sid)
    )
    assert model == "claude-haiku-5-5"


async def test_the_consumer_reports_its_lag_and_catches_up(bus: Bus, pool: asyncpg.Pool) -> None:
    sid = await _session(pool, SessionConfig())
    meta = MessageMeta(session_id=sid)
    await bus.ensure_stream(EVENTS_STREAM, [EVENTS_SUBJECTS])
    now = datetime.now(UTC)
    stopping = asyncio.Event()
    task = asyncio.create_task(consume(bus, Recorder(pool), stopping))

    def lag() -> float:
        value = REGISTRY.get_sample_value(
            "parley_jetstream_pending_messages", {"consumer": DURABLE}
        )
        return value if value is not None else -1.0

    try:
        await eventually(lambda: lag() == 0, 15)  # caught up with earlier tests
        stopping.set()
        await asyncio.wait_for(task, 5)
        for turn in range(1, 6):
            usage = UsageRecorded(
                session_id=sid,
                at=now,
                service="tts",
                provider="local",
                quantity=turn,
                unit="characters",
            )
            await bus.js_publish(subjects.event(usage.type), usage, meta)
        stopping = asyncio.Event()
        task = asyncio.create_task(consume(bus, Recorder(pool), stopping))
        # The first measurement, before the backlog is read, sees it.
        await eventually(lambda: lag() >= 5, 10)
        await eventually(lambda: lag() == 0, 15)
    finally:
        stopping.set()
        await asyncio.wait_for(task, 5)


async def test_an_event_of_no_possible_session_is_dropped_and_the_rest_stored(
    bus: Bus, pool: asyncpg.Pool
) -> None:
    sid = await _session(pool, SessionConfig())
    await bus.ensure_stream(EVENTS_STREAM, [EVENTS_SUBJECTS])
    now = datetime.now(UTC)
    for session_id in ("not-a-session-id", sid):
        usage = UsageRecorded(
            session_id=session_id,
            at=now,
            service="tts",
            provider="local",
            quantity=7,
            unit="characters",
        )
        await bus.js_publish(subjects.event(usage.type), usage, MessageMeta(session_id=session_id))
    stopping = asyncio.Event()
    task = asyncio.create_task(consume(bus, Recorder(pool), stopping))
    try:

        async def stored() -> bool:
            return bool(
                await pool.fetchval(
                    "SELECT count(*) FROM voice_usage WHERE session_id = $1", uuid.UUID(sid)
                )
            )

        await eventually(stored, 15)
        assert not task.done(), "the consumer stopped"
    finally:
        stopping.set()
        await asyncio.wait_for(task, 5)


async def test_a_fact_is_keyed_by_its_message_id_and_a_recreated_stream_collides_with_nothing(
    bus: Bus,
) -> None:
    # A stream of this test's own: the events stream is shared with every other test.
    stream, subject = f"REKEY_{uuid.uuid4().hex[:8]}", f"parley.rekey{uuid.uuid4().hex[:8]}"
    meta = MessageMeta(session_id=str(uuid.uuid4()))

    async def first_message(msg_id: str | None) -> str:
        await bus.ensure_stream(stream, [f"{subject}.>"])
        await bus.js_publish(f"{subject}.fact", b"{}", meta, msg_id=msg_id)
        sub = await bus.js.pull_subscribe(f"{subject}.>", stream=stream)
        try:
            (msg,) = await sub.fetch(1, timeout=5)
            await msg.ack()
            assert msg.metadata.sequence.stream == 1
            return event_id(msg)
        finally:
            await sub.unsubscribe()
            await bus.js.delete_stream(stream)

    assert await first_message("usage-42") == "usage-42"
    # Without a message id, a stream created again numbers from 1 again, yet its first fact
    # is a different one.
    before = await first_message(None)
    await asyncio.sleep(0.01)
    again = await first_message(None)
    assert before.startswith(f"{stream}:1@")
    assert again.startswith(f"{stream}:1@")
    assert before != again
