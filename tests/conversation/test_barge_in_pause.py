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
import pytest

from bench.audio import silence, speak
from bench.barge_in import REPLY, noise_burst
from bench.call import Call
from bench.espeak import speak_in
from parley_llm.providers.scripted import ScriptedLlmProvider
from parley_stt.providers.scripted import ScriptedSttProvider

from .conftest import SCRIPTED

# The test's microphone hears the user only (as a browser's echo-cancelled one does).
LOCAL_EARS = {
    **SCRIPTED,
    "stt_provider": "local",
    "language": "en",
    "echo_cancellation": "client",
}


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


# Whisper (base) hears Piper's hums as anything from nothing to "Emma Macon" (bench/barge_in.py
# counts those): "mm-hmm" is heard by the scripted recogniser, the others by the local one.
@pytest.mark.parametrize(
    ("said", "ears_of"),
    [
        ("Mm-hmm.", "scripted"),
        ("Yeah.", "local"),
        ("Okay.", "local"),
        ("Uh-huh.", "local"),
        ("Right.", "local"),
    ],
)
async def test_a_backchannel_pauses_and_the_answer_resumes_to_its_end(
    ears: str,
    pool: asyncpg.Pool,
    scripted_llm: ScriptedLlmProvider,
    scripted_stt: ScriptedSttProvider,
    said: str,
    ears_of: str,
) -> None:
    scripted_llm.reply, scripted_llm.delta_delay_s = REPLY, 0.0
    scripted_stt.script = [said]
    backchannel = await speak(said)
    async with talking(ears, stt_provider=ears_of) as (call, turn):
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
        # A burst the VAD calls speech (most of bench/barge_in.py's it does not).
        await call.say(noise_burst(300, seed=3) + silence(1500))
        paused = await call.wait_for("audio_pause", within_s=10)
        resumed = await call.wait_for("audio_resume", within_s=10)
        assert call.arrival(resumed) > call.arrival(paused)
        await _resumed_and_completed(call, turn, pool)
        # A pause in which the recogniser heard no words is for the verdict, not the user.
        assert all(e["data"]["text"].strip() for e in call.events("transcript")), _types(call)


async def test_a_hum_longer_than_the_decision_window_with_no_words_resumes(
    ears: str,
    pool: asyncpg.Pool,
    scripted_llm: ScriptedLlmProvider,
    scripted_stt: ScriptedSttProvider,
) -> None:
    # eSpeak's "Mm-hm" is a second of voice in which Whisper hears no words at all: the
    # pause's empty transcript says so, and the turn resumes instead of being cut as talk.
    scripted_llm.reply, scripted_llm.delta_delay_s = REPLY, 0.0
    scripted_stt.script = [""]
    hum = await speak_in("en-us+f3", "Mm-hm.")
    async with talking(ears, stt_provider="scripted") as (call, turn):
        await call.say(hum + silence(1500))
        paused = await call.wait_for("audio_pause", within_s=10)
        resumed = await call.wait_for("audio_resume", within_s=10)
        assert call.arrival(resumed) > call.arrival(paused)
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
        # The question is answered to the end of its audio (its pauses may make the
        # end-of-turn model answer "Wait." first; the rest then interrupts that answer).
        ended = await call.wait_for("audio_end", lambda e: e["data"]["turn_id"] > turn, within_s=30)
        new_turn = ended["data"]["turn_id"]
        done = [e for e in call.events("response") if e["data"]["done"]]
        assert [e["data"]["text"] for e in done if e["data"]["turn_id"] == new_turn] == [
            "Tomorrow is sunny."
        ]
        user = await pool.fetchval(
            "SELECT text FROM voice_transcripts WHERE session_id=$1 AND turn_id=$2 AND role='user'",
            uuid.UUID(call.session_id),
            new_turn,
        )
        assert "tomorrow" in user.lower()
        # Memory keeps what was heard of the cut answer, marked interrupted.
        row = await _assistant_row(pool, call.session_id, turn)
        assert row["interrupted"] is True
        assert row["text"] == interrupted["data"]["heard_text"]
        assert 0 < len(row["text"]) < len(REPLY)


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
