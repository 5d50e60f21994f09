"""Usage is priced as it is stored: each row keeps its cost, its turn and the price table
version; the session's summary follows the usage, even usage that arrives after the end;
a replay changes nothing, not even the cost counter."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import pytest
from prometheus_client import REGISTRY

from parley_analytics.pricing import DEFAULT_VERSION, PriceTable, Service, Unit
from parley_analytics.recorder import Recorder
from parley_common.bus import MessageMeta
from parley_common.contracts.events import SessionEnded, UsageRecorded
from parley_common.contracts.session import SessionConfig
from parley_common.testing import session_row


def _usage(
    sid: str, service: Service, provider: str, unit: Unit, quantity: float, model: str | None = None
) -> UsageRecorded:
    return UsageRecorded(
        session_id=sid,
        at=datetime.now(UTC),
        service=service,
        provider=provider,
        unit=unit,
        quantity=quantity,
        model=model,
    )


def _ended(sid: str) -> SessionEnded:
    return SessionEnded(
        session_id=sid,
        at=datetime.now(UTC),
        user_id="test",
        config=SessionConfig(),
        duration_seconds=12.5,
        total_turns=2,
        interruptions_count=0,
    )


def _counted(service: str, provider: str, kind: str) -> float:
    labels = {"service": service, "provider": provider, "kind": kind}
    return REGISTRY.get_sample_value("parley_cost_usd_total", labels) or 0.0


async def test_each_usage_row_keeps_its_cost_turn_and_price_version(pool: asyncpg.Pool) -> None:
    sid = await session_row(pool, SessionConfig())
    recorder = Recorder(pool)
    tag = uuid.uuid4().hex
    # The STT bills an utterance before the dialogue numbers its turn: turn 0 in its headers.
    await recorder.record(
        _usage(sid, "stt", "deepgram", "audio_seconds", 4.8),
        f"{tag}:1",
        MessageMeta(session_id=sid),
    )
    await recorder.record(
        _usage(sid, "llm", "openai", "input_tokens", 1200, "gpt-4.1-mini-2025-04-14"),
        f"{tag}:2",
        MessageMeta(session_id=sid, turn_id=1),
    )
    await recorder.record(
        _usage(sid, "tts", "elevenlabs", "characters", 57),
        f"{tag}:3",
        MessageMeta(session_id=sid, turn_id=1),
    )
    rows = await pool.fetch(
        "SELECT service, turn_id, cost_usd, price_version FROM voice_usage"
        " WHERE session_id = $1 ORDER BY id",
        uuid.UUID(sid),
    )
    assert [tuple(r) for r in rows] == [
        ("stt", None, Decimal("0.0125") * Decimal("4.8") / 60, DEFAULT_VERSION),
        ("llm", 1, Decimal("0.40") * 1200 / 1_000_000, DEFAULT_VERSION),
        ("tts", 1, Decimal("0.30") * 57 / 1000, DEFAULT_VERSION),
    ]


async def test_a_replay_stores_and_counts_nothing_twice(pool: asyncpg.Pool) -> None:
    sid = await session_row(pool, SessionConfig())
    recorder = Recorder(pool)
    usage = _usage(sid, "tts", "openai", "characters", 2000)
    before = _counted("tts", "openai", "characters")
    event_id = f"replay:{uuid.uuid4().hex}"
    for _ in range(3):
        await recorder.record(usage, event_id, MessageMeta(session_id=sid, turn_id=2))
    assert (
        await pool.fetchval("SELECT count(*) FROM voice_usage WHERE session_id=$1", uuid.UUID(sid))
        == 1
    )
    assert _counted("tts", "openai", "characters") - before == pytest.approx(15 * 2000 / 1_000_000)


async def test_usage_after_the_end_still_reaches_the_session_summary(pool: asyncpg.Pool) -> None:
    sid = await session_row(pool, SessionConfig())
    recorder = Recorder(pool)
    tag = uuid.uuid4().hex
    await recorder.record(_usage(sid, "stt", "whisper", "audio_seconds", 30), f"{tag}:1")
    await recorder.record(_ended(sid), f"{tag}:2")
    # The last turn's synthesis is reported as the session closes, after its end.
    await recorder.record(_usage(sid, "tts", "openai", "characters", 1000), f"{tag}:3")
    await recorder.record(_ended(sid), f"{tag}:2")  # the end redelivered: same figures

    row = await pool.fetchrow(
        "SELECT audio_seconds_processed, characters_synthesized, estimated_cost_usd,"
        " price_version, duration_seconds FROM voice_analytics WHERE session_id = $1",
        uuid.UUID(sid),
    )
    assert row is not None
    assert (row["audio_seconds_processed"], row["characters_synthesized"]) == (30, 1000)
    # Whisper $0.006/min for 30 s + OpenAI TTS $15/1M for 1,000 characters.
    assert row["estimated_cost_usd"] == Decimal("0.003") + Decimal("0.015")
    assert row["price_version"] == DEFAULT_VERSION
    assert row["duration_seconds"] == 12.5


async def test_the_configured_table_prices_and_names_the_cost(pool: asyncpg.Pool) -> None:
    sid = await session_row(pool, SessionConfig())
    table = PriceTable.model_validate(
        {
            "version": "negotiated-7",
            "prices": [
                {"service": "llm", "provider": "scripted", "unit": "output_tokens",
                 "usd": 3, "per": 1000},
            ],
        }
    )  # fmt: skip
    recorder = Recorder(pool, table)
    tag = uuid.uuid4().hex
    await recorder.record(_usage(sid, "llm", "scripted", "output_tokens", 9), f"{tag}:1")
    # Not in the table: stored at no cost, under the same version.
    await recorder.record(_usage(sid, "tts", "openai", "characters", 100), f"{tag}:2")
    rows = await pool.fetch(
        "SELECT cost_usd, price_version FROM voice_usage WHERE session_id = $1 ORDER BY id",
        uuid.UUID(sid),
    )
    assert [tuple(r) for r in rows] == [
        (Decimal("0.027"), "negotiated-7"),
        (Decimal(0), "negotiated-7"),
    ]
