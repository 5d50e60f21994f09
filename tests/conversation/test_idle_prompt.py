"""The optional "are you still there?": after ``idle_prompt_s`` of silence following the
assistant's turn it is said once, as a turn of the assistant's own (text, audio, memory);
the user speaking first means it is not said for that silence, and speaking over it
interrupts it like any other turn."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from bench.audio import silence, speak
from bench.call import Call
from parley_llm.providers.scripted import ScriptedLlmProvider
from parley_stt.providers.scripted import ScriptedSttProvider

from .conftest import SCRIPTED

PROMPT = "Are you still there?"


def _prompt_done(event: dict[str, object]) -> bool:
    data = event["data"]
    assert isinstance(data, dict)
    return bool(data["done"]) and data["text"] == PROMPT


async def test_the_assistant_asks_once_after_the_silence(
    platform_url: str, pool: asyncpg.Pool, scripted_llm: ScriptedLlmProvider
) -> None:
    scripted_llm.reply = "Sure, here is the answer."
    call = await Call.start(platform_url, **SCRIPTED, idle_prompt_s=2.0)
    try:
        await call.send_json({"type": "text_message", "text": "hello there"})
        answered = await call.wait_for("audio_end", within_s=30)
        answer_turn = answered["data"]["turn_id"]
        prompt = await call.wait_for("response", _prompt_done, within_s=30)
        prompt_turn = prompt["data"]["turn_id"]
        assert prompt_turn == answer_turn + 1
        # Said, not only written: its audio plays to the end.
        await call.wait_for("audio_end", lambda e: e["data"]["turn_id"] == prompt_turn)
        assert call.arrival(prompt) - call.arrival(answered) >= 2.0
        # Once per silence: its own turn does not start another wait.
        await asyncio.sleep(3.5)
        assert len([e for e in call.events("response") if _prompt_done(e)]) == 1
        # The user is back: the next turn follows the prompt's, nothing is overwritten.
        await call.send_json({"type": "text_message", "text": "yes, still here"})
        done = await call.wait_for("response", lambda e: e["data"]["turn_id"] > prompt_turn)
        assert done["data"]["turn_id"] == prompt_turn + 1
        await call.wait_for("audio_end", lambda e: e["data"]["turn_id"] == prompt_turn + 1)
    finally:
        await call.close()
    for _ in range(50):  # the dialogue writes behind
        rows = await pool.fetch(
            "SELECT turn_id, role, text FROM voice_transcripts WHERE session_id=$1"
            " ORDER BY turn_id, role DESC",
            uuid.UUID(call.session_id),
        )
        if len(rows) >= 5:
            break
        await asyncio.sleep(0.1)
    assert [(r["turn_id"] - answer_turn, r["role"], r["text"]) for r in rows] == [
        (0, "user", "hello there"),
        (0, "assistant", "Sure, here is the answer."),
        (1, "assistant", PROMPT),
        (2, "user", "yes, still here"),
        (2, "assistant", "Sure, here is the answer."),
    ]


async def test_speaking_before_the_prompt_means_it_is_not_said(
    platform_url: str, scripted_llm: ScriptedLlmProvider
) -> None:
    scripted_llm.reply = "Sure."
    question = await speak("What is the weather like in Paris today?")
    # Shorter than the question: without the user's speech it would be said while they talk.
    call = await Call.start(platform_url, **SCRIPTED, idle_prompt_s=2.0)
    try:
        await call.send_json({"type": "text_message", "text": "hello there"})
        first = await call.wait_for("audio_end", within_s=30)
        # The user answers at once, and is answered in turn.
        await call.say(question + silence(1500))
        second = await call.wait_for(
            "audio_end", lambda e: e["data"]["turn_id"] > first["data"]["turn_id"], within_s=30
        )
        # The first silence was ended by the user: the prompt comes only after the second.
        prompt = await call.wait_for("response", _prompt_done, within_s=30)
    finally:
        await call.close()
    assert prompt["data"]["turn_id"] > second["data"]["turn_id"]
    assert call.arrival(prompt) - call.arrival(second) >= 2.0


async def test_speaking_over_the_prompt_interrupts_it(
    platform_url: str, scripted_llm: ScriptedLlmProvider, scripted_stt: ScriptedSttProvider
) -> None:
    # No user turn precedes the prompt, yet its audio is the assistant's audible turn.
    scripted_llm.reply = "Sure, here is the answer."
    scripted_stt.script = ["Wait."]
    wait = await speak("Wait.")
    call = await Call.start(platform_url, **SCRIPTED, idle_prompt_s=2.0, echo_cancellation="client")
    try:
        await call.send_json({"type": "text_message", "text": "hello there"})
        answered = await call.wait_for("audio_end", within_s=30)
        started = await call.wait_for(
            "audio_start",
            lambda e: e["data"]["turn_id"] > answered["data"]["turn_id"],
            within_s=30,
        )
        prompt_turn = started["data"]["turn_id"]
        await call.say(wait + silence(1500))
        paused = await call.wait_for("audio_pause", within_s=10)
        assert paused["data"]["turn_id"] == prompt_turn
        cut = await call.wait_for("interrupted", within_s=10)
        assert cut["data"]["turn_id"] == prompt_turn
    finally:
        await call.close()
