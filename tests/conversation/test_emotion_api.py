"""Emotion through the whole platform: a session with ``detect_emotion`` gets each spoken
turn's tone on its final transcript event, stored on the user's row and returned by both
transcript APIs; the second turn, said angrily, is told apart by the voice. The model (an
emulated cloud one) is told the tone in its system prompt. A session without the option gets
none."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bench.audio import silence, speak
from bench.call import Call
from bench.prosody import in_voice
from parley_emulators.base import running
from parley_emulators.vendors import OpenAi
from parley_llm.providers.registry import REGISTRY as LLM_PROVIDERS
from parley_stt.providers.scripted import ScriptedSttProvider

from .conftest import SCRIPTED

PLEASED = "This is wonderful, thank you so much."
ANNOYED = "This still does not work, I have tried it three times."


async def _turn(call: Call, stt: ScriptedSttProvider, text: str, pcm: bytes) -> dict[str, Any]:
    """Say ``pcm`` (the scripted STT hears ``text``); the user's final transcript event once
    the answer has been spoken."""
    stt.script = [text]
    mark = len(call.log)
    # More silence than the longest wait of the end-of-turn model at high sensitivity
    # (1.5 s), should it call the sentence unfinished: the turn ends whatever it says.
    await call.say(pcm + silence(1700), realtime=False)
    final = await call.wait_for(
        "transcript", lambda e: e["data"]["role"] == "user" and e["data"]["is_final"], after=mark
    )
    await call.wait_for("audio_end", after=mark)
    data: dict[str, Any] = final["data"]
    return data


async def test_each_spoken_turn_has_its_tone_in_the_events_and_the_transcript(
    platform_url: str, scripted_stt: ScriptedSttProvider
) -> None:
    call = await Call.start(
        platform_url, **SCRIPTED, interrupt_sensitivity="high", detect_emotion=True
    )
    try:
        first = await _turn(call, scripted_stt, PLEASED, await speak(PLEASED))
        second = await _turn(
            call, scripted_stt, ANNOYED, in_voice(await speak(ANNOYED), "animated")
        )
    finally:
        await call.close()
    # The first turn is judged on its words (the voice has no baseline yet); the second
    # one's words alone would be frustrated, its raised voice makes it angry.
    assert first["emotion"]["label"] == "happy", first
    assert first["emotion"]["arousal"] == 0
    assert second["emotion"]["label"] == "angry", second
    assert second["emotion"]["arousal"] > 0.3
    async with httpx.AsyncClient(base_url=platform_url) as client:
        v1 = (await client.get(f"/api/v1/sessions/{call.session_id}/transcript")).json()
        s1 = (await client.get(f"/api/voice/{call.session_id}/transcript")).json()
    users = [e for e in v1["entries"] if e["role"] == "user"]
    assert [(e["text"], e["emotion"]["label"]) for e in users] == [
        (PLEASED, "happy"),
        (ANNOYED, "angry"),
    ]
    assert users[1]["emotion"] == second["emotion"]
    assert sum(users[1]["emotion"]["scores"].values()) == pytest.approx(1.0, abs=1e-3)
    assert all(e["emotion"] is None for e in v1["entries"] if e["role"] == "assistant")
    assert [e["emotion"]["label"] for e in s1["transcript"] if e["role"] == "user"] == [
        "happy",
        "angry",
    ]


async def test_a_session_without_the_option_has_no_tone(
    platform_url: str, scripted_stt: ScriptedSttProvider
) -> None:
    call = await Call.start(platform_url, **SCRIPTED, interrupt_sensitivity="high")
    try:
        final = await _turn(call, scripted_stt, PLEASED, await speak(PLEASED))
    finally:
        await call.close()
    assert final["emotion"] is None
    async with httpx.AsyncClient(base_url=platform_url) as client:
        v1 = (await client.get(f"/api/v1/sessions/{call.session_id}/transcript")).json()
    assert [e["emotion"] for e in v1["entries"]] == [None, None]


async def test_the_model_is_told_the_tone_of_the_turn(
    platform_url: str, scripted_stt: ScriptedSttProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    openai = OpenAi(api_key="test-key", reply="I am sorry, let us sort it out.")
    async with running(openai.app()) as url:
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        monkeypatch.setenv("OPENAI_BASE_URL", f"{url}/v1")
        # Adapters are built once per process from the environment: rebuilt for the
        # emulator, and again (without it) for whatever runs next.
        await LLM_PROVIDERS.aclose()
        await LLM_PROVIDERS.prepare()
        try:
            config = {**SCRIPTED, "llm_provider": "openai", "interrupt_sensitivity": "high"}
            call = await Call.start(platform_url, **config, detect_emotion=True)
            try:
                final = await _turn(call, scripted_stt, ANNOYED, await speak(ANNOYED))
            finally:
                await call.close()
        finally:
            monkeypatch.undo()
            await LLM_PROVIDERS.aclose()
    assert final["emotion"]["label"] == "frustrated"
    body = [r.body for r in openai.chat.requests if "chat/completions" in r.path][-1]
    system = body["messages"][0]
    assert system["role"] == "system"
    assert "sounded frustrated" in system["content"]
