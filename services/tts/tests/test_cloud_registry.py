"""The cloud TTS providers in the registry: unavailable without their key (the reason names
the variable), available and configured from the environment with it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from parley_common.contracts.session import TtsProvider as TtsName
from parley_emulators import openai_speech
from parley_emulators.base import EmulatorState, running
from parley_emulators.speech import collect, samples_for
from parley_tts.providers.base import StreamingTtsProvider
from parley_tts.providers.registry import REGISTRY, get_provider

CLOUD_ENV = (
    "OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_TTS_MODEL", "OPENAI_TTS_VOICE",
    "ELEVENLABS_API_KEY", "ELEVENLABS_BASE_URL", "DEEPGRAM_API_KEY", "DEEPGRAM_BASE_URL",
    "PLAYHT_API_KEY", "PLAYHT_USER_ID", "PLAYHT_BASE_URL",
)  # fmt: skip


@pytest.fixture
async def clean_env(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[pytest.MonkeyPatch]:
    for name in CLOUD_ENV:
        monkeypatch.delenv(name, raising=False)
    built = dict(REGISTRY._built)
    yield monkeypatch
    # Adapters built here hold this test's settings: do not leave them to other tests.
    for name, provider in REGISTRY._built.items():
        if name not in built:
            await provider.aclose()  # type: ignore[attr-defined]
    REGISTRY._built.clear()
    REGISTRY._built.update(built)


@pytest.mark.parametrize(
    ("name", "variable"),
    [
        (TtsName.OPENAI, "OPENAI_API_KEY"),
        (TtsName.ELEVENLABS, "ELEVENLABS_API_KEY"),
        (TtsName.DEEPGRAM, "DEEPGRAM_API_KEY"),
        (TtsName.PLAYHT, "PLAYHT_API_KEY"),
    ],
)
def test_unavailable_without_key_with_the_reason(
    clean_env: pytest.MonkeyPatch, name: TtsName, variable: str
) -> None:
    status = REGISTRY.status(name)
    assert not status.available
    assert status.reason is not None
    assert f"set {variable}" in status.reason


@pytest.mark.parametrize("name", [TtsName.OPENAI, TtsName.ELEVENLABS, TtsName.DEEPGRAM])
def test_available_with_key(clean_env: pytest.MonkeyPatch, name: TtsName) -> None:
    clean_env.setenv(f"{name.value.upper()}_API_KEY", "a-key")
    status = REGISTRY.status(name)
    assert status.available, status.reason
    assert get_provider(name).name == name.value


def test_streaming_providers_are_the_websocket_ones(clean_env: pytest.MonkeyPatch) -> None:
    for name in (TtsName.OPENAI, TtsName.ELEVENLABS, TtsName.DEEPGRAM):
        clean_env.setenv(f"{name.value.upper()}_API_KEY", "a-key")
    assert not isinstance(get_provider(TtsName.OPENAI), StreamingTtsProvider)
    assert isinstance(get_provider(TtsName.ELEVENLABS), StreamingTtsProvider)
    assert isinstance(get_provider(TtsName.DEEPGRAM), StreamingTtsProvider)


def test_playht_says_it_is_legacy_at_each_missing_piece(clean_env: pytest.MonkeyPatch) -> None:
    reasons = [REGISTRY.status(TtsName.PLAYHT).reason]
    clean_env.setenv("PLAYHT_API_KEY", "a-key")
    reasons.append(REGISTRY.status(TtsName.PLAYHT).reason)
    clean_env.setenv("PLAYHT_USER_ID", "user")
    reasons.append(REGISTRY.status(TtsName.PLAYHT).reason)
    assert all(r is not None and "legacy" in r and "shut down" in r for r in reasons)
    assert "PLAYHT_USER_ID" in str(reasons[1])
    assert "PLAYHT_BASE_URL" in str(reasons[2])
    clean_env.setenv("PLAYHT_BASE_URL", "http://127.0.0.1:9")
    assert REGISTRY.status(TtsName.PLAYHT).available


async def test_base_url_model_and_voice_come_from_the_environment(
    clean_env: pytest.MonkeyPatch,
) -> None:
    state = EmulatorState(api_key="env-key")
    async with running(openai_speech.app(state)) as url:
        clean_env.setenv("OPENAI_API_KEY", "env-key")
        clean_env.setenv("OPENAI_BASE_URL", f"{url}/v1")
        clean_env.setenv("OPENAI_TTS_MODEL", "tts-1-hd")
        clean_env.setenv("OPENAI_TTS_VOICE", "coral")
        provider = get_provider(TtsName.OPENAI)
        pcm = await collect(provider.synthesize("From the environment.", None))
    assert len(pcm) == 2 * samples_for("From the environment.", 24_000)
    body = state.last("/audio/speech").body
    assert (body["model"], body["voice"]) == ("tts-1-hd", "coral")
