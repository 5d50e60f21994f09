"""Server-side echo cancellation end to end: a client on a speakerphone hears the assistant
(Piper's voice) back in its microphone, delayed, quieter and over noise. With the gateway's
AEC the assistant never interrupts itself on that echo; without it, it does; and a question
spoken over the echo still interrupts."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bench.audio import speak
from bench.call import Call
from bench.echo_room import EchoPath, Speakerphone
from parley_llm.providers.scripted import ScriptedLlmProvider

# Scripted words, Piper's voice: the echo is speech to the VAD.
STACK = {"stt_provider": "scripted", "llm_provider": "scripted", "tts_provider": "local"}
ANSWER = (
    "Tomorrow will be sunny in the morning, with a light breeze from the west. Clouds come"
    " in after lunch, and there may be a short shower around four. The evening stays mild,"
    " about eighteen degrees, so a light jacket will do."
)
OUTPUT_RATE = 24_000


@contextlib.asynccontextmanager
async def _speakerphone(
    platform_url: str, path: EchoPath, **config: Any
) -> AsyncIterator[tuple[Call, Speakerphone]]:
    call = await Call.start(platform_url, **STACK, output_sample_rate=OUTPUT_RATE, **config)
    phone = Speakerphone(call, path, OUTPUT_RATE)
    phone.start()
    try:
        yield call, phone
    finally:
        await phone.stop()
        await call.close()


async def _answer_over_echo(call: Call) -> int:
    """Ask by text; returns the answer's turn id once its audio has started."""
    await call.send_json({"type": "text_message", "text": "What is the weather tomorrow?"})
    start = await call.wait_for("audio_start", within_s=60)
    return int(start["data"]["turn_id"])


@pytest.mark.parametrize(("delay_ms", "attenuation_db"), [(60, 10), (150, 15), (250, 20)])
async def test_the_assistant_never_interrupts_itself_on_its_echo_with_server_aec(
    platform_url: str, scripted_llm: ScriptedLlmProvider, delay_ms: int, attenuation_db: float
) -> None:
    scripted_llm.reply = ANSWER
    path = EchoPath(delay_ms, attenuation_db, seed=delay_ms)
    async with _speakerphone(platform_url, path, echo_cancellation="server") as (call, phone):
        turn = await _answer_over_echo(call)
        try:
            await call.wait_for("audio_end", lambda e: e["data"]["turn_id"] == turn, within_s=90)
        except TimeoutError:
            seen = Counter(e["type"] for e in call.events())
            raise AssertionError(f"the answer did not play to its end: {seen}") from None
        await asyncio.sleep(0.5)  # the echo's tail comes back too
        # The whole answer came out of the speaker (and so went back up as echo).
        assert phone.played_samples > 16_000 * 5
    assert call.events("interrupted") == []
    assert call.events("speech_started") == [], "the VAD heard the echo as speech"


async def test_without_aec_the_same_echo_interrupts(
    platform_url: str, scripted_llm: ScriptedLlmProvider
) -> None:
    scripted_llm.reply = ANSWER
    async with _speakerphone(platform_url, EchoPath(120, 10), echo_cancellation="off") as (
        call,
        _,
    ):
        turn = await _answer_over_echo(call)
        interrupted = await call.wait_for("interrupted", within_s=60)
    assert interrupted["data"]["turn_id"] == turn


async def test_a_question_spoken_over_the_echo_still_interrupts(
    platform_url: str, scripted_llm: ScriptedLlmProvider
) -> None:
    scripted_llm.reply = ANSWER
    question = await speak("Wait, stop, what about the day after tomorrow?")
    async with _speakerphone(platform_url, EchoPath(150, 15), echo_cancellation="server") as (
        call,
        phone,
    ):
        turn = await _answer_over_echo(call)
        await asyncio.sleep(2.0)  # well into the answer, its echo coming back
        scripted_llm.reply = "The day after tomorrow is cold."
        phone.say(question)
        interrupted = await call.wait_for("interrupted", within_s=30)
        assert interrupted["data"]["turn_id"] == turn
        await call.wait_for("response", lambda e: e["data"]["done"] and e["data"]["turn_id"] > turn)
