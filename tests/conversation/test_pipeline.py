"""A conversation end to end through the gateway, with scripted models: typed and spoken
turns, barge-in, sensitivity, push-to-talk, and what ends up in PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from bench.audio import BYTES_PER_MS, silence, speak
from bench.call import Call
from bench.mic import voiced_span_ms
from parley_common.bus import Bus, Received
from parley_common.contracts import subjects
from parley_common.contracts.subjects import SessionChannel
from parley_llm import session as dialogue
from parley_llm.providers.scripted import ScriptedLlmProvider

from .conftest import SCRIPTED

QUESTION = "What is the weather like in Paris today?"
LONG_REPLY = " ".join(
    f"Sentence number {i} of a long answer that keeps the assistant talking for a while."
    for i in range(1, 25)
)


@pytest.fixture
async def question() -> bytes:
    return await speak(QUESTION)


@contextlib.asynccontextmanager
async def _call(platform_url: str, **config: Any) -> AsyncIterator[Call]:
    call = await Call.start(platform_url, **{**SCRIPTED, **config})
    try:
        yield call
    finally:
        await call.close()


async def _rows(pool: asyncpg.Pool, sid: str) -> list[asyncpg.Record]:
    return list(
        await pool.fetch(
            "SELECT turn_id, role, text, interrupted, confidence FROM voice_transcripts"
            " WHERE session_id=$1 ORDER BY turn_id, role DESC",
            uuid.UUID(sid),
        )
    )


async def test_typed_message_is_answered_with_text_and_audio(
    platform_url: str, pool: asyncpg.Pool, scripted_llm: ScriptedLlmProvider
) -> None:
    scripted_llm.reply = "Hello there. Nice to meet you."
    async with _call(platform_url, interrupt_sensitivity="high") as call:
        await call.send_json({"type": "text_message", "content": "hi"})
        done = await call.wait_for("response", lambda e: e["data"]["done"])
        assert done["data"]["text"] == "Hello there. Nice to meet you."
        await call.wait_for("audio_end")
        start = call.events("audio_start")[0]["data"]
        assert start["sample_rate"] == 24000
        audio = b"".join(r.audio or b"" for r in call.audio(start["turn_id"]))
        # The scripted voice speaks 60 ms per character.
        assert abs(len(audio) / 48 - 60 * len("Hello there.Nice to meet you.")) < 200
        assert any(e["type"] == "response_generated" for e in call.events())
        typed = call.events("transcript")[0]["data"]
        assert (typed["role"], typed["text"], typed["is_final"]) == ("user", "hi", True)
        rows = await _rows(pool, call.session_id)
        assert [(r["role"], r["text"]) for r in rows] == [
            ("user", "hi"),
            ("assistant", "Hello there. Nice to meet you."),
        ]


async def test_spoken_question_is_transcribed_answered_and_stored(
    platform_url: str, pool: asyncpg.Pool, question: bytes
) -> None:
    async with _call(platform_url, interrupt_sensitivity="high") as call:
        await call.say(question + silence(700), realtime=False)
        await call.wait_for("speech_started")
        await call.wait_for("speech_stopped")
        final = await call.wait_for("transcript", lambda e: e["data"]["is_final"])
        assert final["data"]["text"] == "hello there"  # the scripted STT's line
        await call.wait_for("transcription_complete")
        await call.wait_for("audio_end", within_s=30)
        assert call.audio()
        metrics = await call.wait_for(
            "metrics", lambda e: e["data"].get("tts_first_byte_ms") is not None
        )
        assert metrics["data"]["tts_first_byte_ms"] >= 0
        await call.wait_for("metrics", lambda e: e["data"].get("voice_to_voice_ms") is not None)
        rows = await _rows(pool, call.session_id)
        assert [r["role"] for r in rows] == ["user", "assistant"]
        assert rows[0]["text"] == "hello there"


async def test_barge_in_stops_the_old_turn_everywhere_and_answers_the_new_one(
    platform_url: str,
    pool: asyncpg.Pool,
    nats_url: str,
    scripted_llm: ScriptedLlmProvider,
    question: bytes,
) -> None:
    scripted_llm.reply, scripted_llm.delta_delay_s = LONG_REPLY, 0.03
    async with _call(platform_url, interrupt_sensitivity="medium") as call:
        observer = await Bus.connect(nats_url, name="observer")
        tts_audio: list[tuple[float, int]] = []

        async def on_audio(msg: Received) -> None:
            tts_audio.append((time.perf_counter(), msg.meta.turn_id))

        await observer.subscribe(
            subjects.session(call.session_id, SessionChannel.AUDIO_OUT), on_audio
        )
        try:
            await call.send_json({"type": "text_message", "text": "tell me a long story"})
            start = await call.wait_for("audio_start")
            old_turn = start["data"]["turn_id"]
            await asyncio.sleep(1.0)  # the assistant is talking
            runs_before = len(scripted_llm.runs)
            # The answer to the next question is short (the old one already has its text).
            scripted_llm.reply = "Short answer."
            # Medium sensitivity: the new turn ends after 1 s of silence.
            await call.say(question + silence(1200))
            interrupted = await call.wait_for("interrupted", within_s=10)
            cut_at = call.arrival(interrupted)
            assert interrupted["data"]["turn_id"] == old_turn
            # No audio of the old turn after "interrupted", until the next turn starts.
            after = call.log[
                call.log.index(next(r for r in call.log if r.event is interrupted)) + 1 :
            ]
            for record in after:
                if record.event is not None and record.event["type"] == "audio_start":
                    break
                assert record.audio is None, "old-turn audio after interrupted"
            # The LLM stream of the old turn was cancelled, the TTS stopped producing it.
            assert scripted_llm.runs[runs_before - 1].cancelled
            await asyncio.sleep(0.3)
            assert not [t for t, turn in tts_audio if turn == old_turn and t > cut_at + 0.1]
            # The new utterance is answered.
            new_done = await call.wait_for(
                "response", lambda e: e["data"]["done"] and e["data"]["turn_id"] > old_turn
            )
            await call.wait_for(
                "audio_end", lambda e: e["data"]["turn_id"] == new_done["data"]["turn_id"]
            )
            # Memory keeps only what was heard, marked interrupted.
            rows = {(r["turn_id"], r["role"]): r for r in await _rows(pool, call.session_id)}
            kept = rows[(old_turn, "assistant")]
            assert kept["interrupted"] is True
            assert kept["text"] == interrupted["data"]["heard_text"]
            assert 0 < len(kept["text"]) < len(LONG_REPLY)
            assert LONG_REPLY.startswith(kept["text"])
            metrics = await call.wait_for(
                "metrics", lambda e: e["data"].get("interrupt_ms") is not None
            )
            assert 0 < metrics["data"]["interrupt_ms"] < 2000
            session = await pool.fetchrow(
                "SELECT interruptions_count, total_turns FROM voice_sessions WHERE id=$1",
                uuid.UUID(call.session_id),
            )
            assert session is not None
            assert session["interruptions_count"] == 1
            assert session["total_turns"] == 2
        finally:
            await observer.close()


async def test_low_sensitivity_never_barges_in(
    platform_url: str, scripted_llm: ScriptedLlmProvider, question: bytes
) -> None:
    scripted_llm.reply = LONG_REPLY[:400]
    async with _call(platform_url, interrupt_sensitivity="low") as call:
        await call.send_json({"type": "text_message", "text": "talk to me"})
        await call.wait_for("audio_start")
        await asyncio.sleep(0.5)
        await call.say(question + silence(300))
        await call.wait_for("speech_started")
        await asyncio.sleep(1.0)
        assert call.events("interrupted") == []
        frames_before = len(call.audio())
        await asyncio.sleep(0.5)
        assert len(call.audio()) > frames_before  # still talking


@pytest.mark.parametrize(("sensitivity", "silence_ms"), [("high", 500), ("low", 2000)])
async def test_turn_ends_after_the_sensitivity_silence(
    platform_url: str, question: bytes, sensitivity: str, silence_ms: int
) -> None:
    # Cut the recording where the voice ends, so that the silence sent is all the silence.
    _, voice_end_ms = voiced_span_ms(question)
    spoken = question[: int(voice_end_ms) * BYTES_PER_MS]
    # The silence rule alone: the end-of-turn model would end this question's turn sooner.
    async with _call(platform_url, interrupt_sensitivity=sensitivity, semantic_turn=False) as call:
        await call.say(spoken + silence(silence_ms - 150), realtime=False)
        await call.wait_for("speech_stopped")
        await asyncio.sleep(0.5)
        assert not [e for e in call.events("transcript") if e["data"]["is_final"]]
        await call.say(silence(250), realtime=False)
        await call.wait_for("transcript", lambda e: e["data"]["is_final"], within_s=10)


async def test_push_to_talk_ends_the_turn_on_release(platform_url: str, question: bytes) -> None:
    async with _call(platform_url, interrupt_sensitivity="low") as call:
        await call.send_json({"type": "audio_start"})
        await call.say(question, realtime=False)
        await call.send_json({"type": "audio_stop"})
        final = await call.wait_for("transcript", lambda e: e["data"]["is_final"], within_s=5)
        assert final["data"]["text"]
        await call.wait_for("response", lambda e: e["data"]["done"])


async def test_synthesis_stays_a_few_seconds_ahead_of_playback(
    platform_url: str, nats_url: str, scripted_llm: ScriptedLlmProvider
) -> None:
    scripted_llm.reply = LONG_REPLY  # about two minutes of scripted speech
    observer = await Bus.connect(nats_url, name="pacing-observer")
    published: list[tuple[float, int]] = []

    async def on_audio(msg: Received) -> None:
        published.append((time.perf_counter(), len(msg.data)))

    try:
        async with _call(platform_url) as call:
            await observer.subscribe(
                subjects.session(call.session_id, SessionChannel.AUDIO_OUT), on_audio
            )
            await call.send_json({"type": "text_message", "text": "talk"})
            await call.wait_for("audio_start")
            await asyncio.sleep(1.5)
            first = published[0][0]
            audio_s = sum(n for _, n in published) / 48000
            elapsed = time.perf_counter() - first
            assert audio_s <= elapsed + 5.0 + 0.6, (audio_s, elapsed)
            assert audio_s >= 5.0  # it did run ahead, up to the limit
    finally:
        await observer.close()


async def test_a_dialogue_model_that_never_answers_gives_an_error_and_the_call_goes_on(
    platform_url: str, scripted_llm: ScriptedLlmProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dialogue, "ANSWER_DEADLINE_S", 1.0)
    scripted_llm.reply, scripted_llm.delta_delay_s = "Sorry for the wait.", 600.0  # hung
    async with _call(platform_url) as call:
        asked = time.perf_counter()
        await call.send_json({"type": "text_message", "content": "hello?"})
        error = await call.wait_for("error", within_s=10)
        assert time.perf_counter() - asked < 5
        assert error["data"]["code"] == "llm_timeout", error
        assert scripted_llm.runs[-1].cancelled  # the hung stream was closed

        scripted_llm.delta_delay_s = 0.0
        await call.send_json({"type": "text_message", "content": "are you there?"})
        done = await call.wait_for("response", lambda e: e["data"]["done"] and e["data"]["text"])
        assert done["data"]["text"] == "Sorry for the wait."
        await call.wait_for("audio_end", lambda e: e["data"]["turn_id"] == done["data"]["turn_id"])
