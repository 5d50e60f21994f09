"""TTS fallback on the real bus: a provider that fails before the user heard anything hands
the rest of the turn to the next provider of the chain, sentence path and input-stream path
alike, and the switch is recorded durably."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr

from parley_common.bus import Bus, MessageMeta, Received
from parley_common.bus.audio import AudioOutMeta
from parley_common.contracts import subjects
from parley_common.contracts.bus import ReplyDelta, ReplyDone, SessionAssign
from parley_common.contracts.events import ProviderSwitched
from parley_common.contracts.session import SessionConfig
from parley_common.contracts.session import TtsProvider as TtsName
from parley_common.contracts.subjects import SessionChannel
from parley_common.providers import TEST_PROVIDERS_ENV
from parley_common.testing import eventually
from parley_emulators import elevenlabs, openai_speech
from parley_emulators.base import EmulatorState, Fault, running
from parley_tts.providers._retry import NO_RETRY
from parley_tts.providers.base import TtsProvider
from parley_tts.providers.elevenlabs import ElevenLabsProvider
from parley_tts.providers.openai_speech import OpenAiSpeechProvider
from parley_tts.session import TtsSession

REPLY = "Hello there. This answer is spoken by whoever can."
DOWN = {"error": {"message": "down", "type": "server_error"}}


@pytest.fixture
def switched(bus: Bus) -> list[ProviderSwitched]:
    return []


async def speak(
    bus: Bus, sid: str, provider: TtsProvider, name: TtsName, switched: list[ProviderSwitched]
) -> list[AudioOutMeta]:
    async def on_switch(msg: Received) -> None:
        event = ProviderSwitched.model_validate_json(msg.data)
        if event.session_id == sid:
            switched.append(event)

    audio: list[AudioOutMeta] = []

    async def on_audio(msg: Received) -> None:
        audio.append(AudioOutMeta.parse(msg.meta.extra))

    await bus.subscribe(subjects.event("provider.switched"), on_switch)
    await bus.subscribe(subjects.session(sid, SessionChannel.AUDIO_OUT), on_audio)
    config = SessionConfig(tts_provider=name)
    assign = SessionAssign(session_id=sid, user_id="test", config=config)
    session = TtsSession(bus, assign, provider, fallbacks=["scripted"])
    task = asyncio.create_task(session.run())
    await asyncio.wait_for(session.ready.wait(), 10)
    reply = subjects.session(sid, SessionChannel.REPLY)
    for delta in ("Hello there. ", "This answer is ", "spoken by whoever can."):
        await bus.publish(reply, ReplyDelta(text=delta), MessageMeta(sid, turn_id=1))
    await bus.publish(reply, ReplyDone(text=REPLY), MessageMeta(sid, turn_id=1))
    await eventually(lambda: any(meta.end for meta in audio), 10)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return audio


@pytest.fixture
async def openai_down() -> AsyncIterator[Any]:
    state = EmulatorState(api_key="sk-test")
    state.fail_next(*[Fault(status=503, body=DOWN)] * 4)
    async with running(openai_speech.app(state)) as url:
        provider = OpenAiSpeechProvider(SecretStr("sk-test"), base_url=f"{url}/v1", retry=NO_RETRY)
        yield state, provider
        await provider.aclose()


async def test_the_sentence_path_falls_back_for_the_rest_of_the_turn(
    bus: Bus, openai_down: Any, switched: list[ProviderSwitched], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TEST_PROVIDERS_ENV, "1")
    state, provider = openai_down
    audio = await speak(bus, "tts-fallback-sentences", provider, TtsName.OPENAI, switched)

    spoken = [meta for meta in audio if not meta.end]
    assert spoken, "the fallback spoke the turn"
    assert max(meta.text_end for meta in spoken) == len(REPLY)
    assert len(state.requests) == 1, "the rest of the turn stayed with the fallback"
    await eventually(lambda: bool(switched), 5)
    assert (switched[0].provider, switched[0].fallback) == ("openai", "scripted")
    assert switched[0].reason == "provider_failed"


async def test_a_failed_input_stream_is_said_again_by_the_fallback(
    bus: Bus, switched: list[ProviderSwitched], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TEST_PROVIDERS_ENV, "1")
    state = elevenlabs.ElevenLabsState()
    state.fail_next(Fault(status=500, body=elevenlabs.detail("internal_error", "down")))
    async with running(elevenlabs.app(state)) as url:
        provider = ElevenLabsProvider(SecretStr("test-key"), base_url=url, timeout_s=5.0)
        audio = await speak(bus, "tts-fallback-stream", provider, TtsName.ELEVENLABS, switched)
        await provider.aclose()

    spoken = [meta for meta in audio if not meta.end]
    assert spoken
    assert min(meta.text_start for meta in spoken) == 0, "from the first word"
    assert max(meta.text_end for meta in spoken) == len(REPLY)
    await eventually(lambda: bool(switched), 5)
    assert (switched[0].provider, switched[0].fallback) == ("elevenlabs", "scripted")
