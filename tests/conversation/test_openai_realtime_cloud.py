"""The OpenAI Realtime endpoint in front of cloud providers: the official SDK's realtime
client, unchanged, talks to Parley, whose STT, dialogue and TTS are emulators of OpenAI's
and Deepgram's/ElevenLabs' real wire protocols reached through their official SDKs."""

from __future__ import annotations

import base64

import pytest

from bench.audio import silence, speak
from conftest import SecuredPlatform
from tests.conversation.test_cloud_stacks import QUESTION, Cloud
from tests.conversation.test_cloud_stacks import cloud as cloud
from tests.conversation.test_openai_realtime import _realtime, _update, _user


@pytest.mark.parametrize(
    "stack",
    [
        {"stt_provider": "openai", "llm_provider": "openai", "tts_provider": "openai"},
        {"stt_provider": "deepgram", "llm_provider": "anthropic", "tts_provider": "elevenlabs"},
    ],
    ids=["openai", "deepgram-anthropic-elevenlabs"],
)
async def test_the_sdk_is_answered_by_emulated_cloud_providers(
    secured_platform: SecuredPlatform, cloud: Cloud, stack: dict[str, str]
) -> None:
    question = await speak(QUESTION)
    async with _realtime(secured_platform, _user()) as rt:
        await _update(
            rt,
            audio={
                "input": {
                    "transcription": {"model": "whisper-1"},
                    "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
                }
            },
            parley=stack,
        )
        await rt.append(question + silence(1500))
        heard = await rt.event("conversation.item.input_audio_transcription.completed", within_s=60)
        started = await rt.event("response.output_audio.delta", within_s=60)
        await rt.conn.response.cancel()
        done = await rt.event("response.done", within_s=60)
    assert heard.transcript == QUESTION  # what the emulated STT was told it heard
    assert done.response.id == started.response_id
    assert done.response.status == "cancelled"
    text = "".join(
        e.delta
        for e in rt.of("response.output_audio_transcript.delta")
        if e.response_id == done.response.id
    )
    assert text, "no answer text arrived before the cancel"
    audio = b"".join(
        base64.b64decode(e.delta)
        for e in rt.of("response.output_audio.delta")
        if e.response_id == done.response.id
    )
    assert max(audio[1::2]) > 0  # the emulated voice, not silence
