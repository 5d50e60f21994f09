"""Speech over the assistant, end to end with the local recogniser (issue 13): a backchannel
or a noise burst pauses its audio, which then resumes and completes, and the whole answer is
remembered (the backchannel is not answered); words that interrupt cut it as before, memory
keeps what was heard, and the new question is answered. ``barge_in="stop"`` keeps the hard
stop."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import numpy as np
import pytest

from bench.audio import silence, speak
from bench.call import Call
from parley_llm.providers.scripted import ScriptedLlmProvider

from .conftest import SCRIPTED

REPLY = " ".join(
    f"Part {i} of the answer goes on for a little while before the next one." for i in range(1, 9)
)
# The test's microphone hears the user only (as a browser's echo-cancelled one does).
LOCAL_EARS = {
    **SCRIPTED,
    "stt_provider": "local",
    "language": "en",
    "echo_cancellation": "client",
}


def noise_burst(ms: int = 300, seed: int = 13) -> bytes:
    """A cough-like burst: loud band-limited noise with a fast attack and decay."""
    rng = np.random.default_rng(seed)
    n = ms * 16
    white = rng.standard_normal(n + 64)
    shaped = np.convolve(white, np.hanning(64), mode="same")[:n]  # low-passed: a rumble
    envelope = np.minimum(1.0, np.linspace(0, 8, n)) * np.exp(-np.linspace(0, 4, n))
    samples = shaped / np.abs(shaped).max() * envelope * 0.6
    pcm: bytes = (samples * 32767).astype("<i2").tobytes()
    return pcm


@pytest.fixture(scope="module")
async def ears(platform_url: str) -> str:
    """The platform, its local recogniser loaded (the first utterance of a worker loads the
    model, which a judgement waiting for its words must not have to wait for)."""
    call = await Call.start(platform_url, **LOCAL_EARS)
    try:
        await call.say(await speak("Hello there.") + silence(1200), realtime=False)
        await call.wait_for("transcript", lambda e: e["data"]["is_final"], within_s=60)
    finally:
        await call.close()
    return platform_url


@contextlib.asynccontextmanager
async def talking(platform_url: str, **config: Any) -> AsyncIterator[tuple[Call, int]]:
    """A call whose assistant is a second into a long spoken answer: (call, its turn)."""
    call = await Call.start(platform_url, **{**LOCAL_EARS, **config})
    try:
        await call.send_json({"type": "text_message", "text": "tell me a long story"})
        start = await call.wait_for("audio_start", within_s=30)
        await asyncio.sleep(1.0)
        yield call, start["data"]["turn_id"]
    finally:
        await call.close()


async def _assistant_row(pool: asyncpg.Pool, sid: str, turn_id: int) -> asyncpg.Record:
    row = await pool.fetchrow(
        "SELECT text, interrupted FROM voice_transcripts"
        " WHERE session_id=$1 AND turn_id=$2 AND role='assistant'",
        uuid.UUID(sid),
        turn_id,
    )
    assert row is not None
    return row


def _types(call: Call) -> list[tuple[str, Any, float]]:
    """The call's events but the answer's text, with what they said and when (for failures)."""
    t0 = call.log[0].at
    return [
        (e["type"], e.get("data", {}).get("text"), round(call.arrival(e) - t0, 2))
        for e in call.events()
        if e["type"] != "response"
    ]


async def _resumed_and_completed(call: Call, turn: int, pool: asyncpg.Pool) -> None:
    await call.wait_for("audio_end", lambda e: e["data"]["turn_id"] == turn, within_s=60)
    assert call.events("interrupted") == [], _types(call)
    row = await _assistant_row(pool, call.session_id, turn)
    assert row["text"] == REPLY
    assert row["interrupted"] is False
    # The overlap was no question: no turn answers it.
    await asyncio.sleep(2.0)
    answered = [e for e in call.events("response") if e["data"]["turn_id"] != turn]
    assert answered == [], _types(call)


# "Mm-hm." is how Piper says mm-hmm most like a person does; its "Mm-hmm." is a long buzz that
# Whisper hears as words (bench/barge_in.py counts such renderings too).
@pytest.mark.parametrize("said", ["Mm-hm.", "Yeah.", "Okay.", "Uh-huh.", "Right."])
async def test_a_backchannel_pauses_and_the_answer_resumes_to_its_end(
    ears: str, pool: asyncpg.Pool, scripted_llm: ScriptedLlmProvider, said: str
) -> None:
    scripted_llm.reply, scripted_llm.delta_delay_s = REPLY, 0.0
    backchannel = await speak(said)
    async with talking(ears) as (call, turn):
        await call.say(backchannel + silence(1500))
        paused = await call.wait_for("audio_pause", within_s=10)
        assert paused["data"]["turn_id"] == turn
        resumed = await call.wait_for("audio_resume", within_s=10)
        assert call.events("interrupted") == [], _types(call)
        assert call.arrival(resumed) > call.arrival(paused)
        # Nothing of the turn arrives between the pause and the resume...
        between = [
            r
            for r in call.log
            if call.arrival(paused) < r.at < call.arrival(resumed) and r.audio is not None
        ]
        assert between == []
        # ...and it goes on after it.
        await call.wait_for("audio_end", lambda e: e["data"]["turn_id"] == turn, within_s=60)
        assert [r for r in call.audio(turn) if r.at > call.arrival(resumed)]
        await _resumed_and_completed(call, turn, pool)


async def test_a_noise_burst_does_not_stop_the_answer(
    ears: str, pool: asyncpg.Pool, scripted_llm: ScriptedLlmProvider
) -> None:
    scripted_llm.reply, scripted_llm.delta_delay_s = REPLY, 0.0
    async with talking(ears) as (call, turn):
        await call.say(noise_burst() + silence(1500))
        await asyncio.sleep(1.0)
        # The VAD may or may not call a burst speech; if it did, the turn paused and resumed.
        assert len(call.events("audio_pause")) == len(call.events("audio_resume"))
        await _resumed_and_completed(call, turn, pool)


async def test_words_over_the_answer_interrupt_it_and_are_answered(
    ears: str, pool: asyncpg.Pool, scripted_llm: ScriptedLlmProvider
) -> None:
    scripted_llm.reply, scripted_llm.delta_delay_s = REPLY, 0.0
    question = await speak("Wait, stop, what about tomorrow?")
    async with talking(ears) as (call, turn):
        scripted_llm.reply = "Tomorrow is sunny."
        await call.say(question + silence(1500))
        paused = await call.wait_for("audio_pause", within_s=10)
        interrupted = await call.wait_for("interrupted", within_s=15)
        assert call.arrival(interrupted) >= call.arrival(paused)
        assert interrupted["data"]["turn_id"] == turn
        assert call.events("audio_resume") == []
        new = await call.wait_for(
            "response", lambda e: e["data"]["done"] and e["data"]["turn_id"] > turn, within_s=30
        )
        assert new["data"]["text"] == "Tomorrow is sunny."
        await call.wait_for(
            "audio_end", lambda e: e["data"]["turn_id"] == new["data"]["turn_id"], within_s=30
        )
        row = await _assistant_row(pool, call.session_id, turn)
        assert row["interrupted"] is True
        assert row["text"] == interrupted["data"]["heard_text"]
        assert 0 < len(row["text"]) < len(REPLY)
        user = await pool.fetchval(
            "SELECT text FROM voice_transcripts WHERE session_id=$1 AND turn_id=$2 AND role='user'",
            uuid.UUID(call.session_id),
            new["data"]["turn_id"],
        )
        assert "tomorrow" in user.lower()


async def test_barge_in_stop_cuts_even_a_backchannel_without_pausing(
    ears: str, scripted_llm: ScriptedLlmProvider
) -> None:
    scripted_llm.reply, scripted_llm.delta_delay_s = REPLY, 0.0
    backchannel = await speak("Okay.")
    async with talking(ears, barge_in="stop") as (call, turn):
        await call.say(backchannel + silence(1500))
        interrupted = await call.wait_for("interrupted", within_s=15)
        assert interrupted["data"]["turn_id"] == turn
        assert call.events("audio_pause") == []
