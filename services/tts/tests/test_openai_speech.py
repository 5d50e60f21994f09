"""OpenAI speech adapter through the official SDK against the speech emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from parley_common.errors import (
    BadInputError,
    ProviderRateLimitedError,
)
from parley_emulators import openai_speech
from parley_emulators.base import EmulatorState, Fault, running
from parley_emulators.speech import collect, samples_for
from parley_tts.providers._retry import NO_RETRY, RetryPolicy
from parley_tts.providers.base import TtsProvider
from parley_tts.providers.openai_speech import OpenAiSpeechProvider

TEXT = "Hello there, this is Parley speaking."


@pytest.fixture
async def emulator() -> AsyncIterator[tuple[EmulatorState, str]]:
    state = EmulatorState()
    async with running(openai_speech.app(state)) as url:
        yield state, url


_made: list[OpenAiSpeechProvider] = []


def adapter(
    url: str,
    *,
    key: str = "test-key",
    retry: RetryPolicy = NO_RETRY,
    timeout_s: float = 5.0,
    model: str = "tts-1",
    voice: str = "alloy",
) -> OpenAiSpeechProvider:
    provider = OpenAiSpeechProvider(
        SecretStr(key),
        base_url=f"{url}/v1",
        retry=retry,
        timeout_s=timeout_s,
        model=model,
        voice=voice,
    )
    _made.append(provider)
    return provider


@pytest.fixture(autouse=True)
async def _close_adapters() -> AsyncIterator[None]:
    yield
    while _made:
        await _made.pop().aclose()


async def test_streams_pcm_at_24khz_with_model_voice_and_speed(
    emulator: tuple[EmulatorState, str],
) -> None:
    state, url = emulator
    provider: TtsProvider = adapter(url)
    assert provider.sample_rate == 24_000
    pcm = await collect(provider.synthesize(TEXT, "nova", model="gpt-4o-mini-tts", speed=1.25))
    assert len(pcm) == 2 * samples_for(TEXT, 24_000, 1.25)
    body = state.last("/audio/speech").body
    assert body == {
        "input": TEXT,
        "model": "gpt-4o-mini-tts",
        "voice": "nova",
        "response_format": "pcm",
        "speed": 1.25,
    }


async def test_defaults_are_the_configured_model_and_voice(
    emulator: tuple[EmulatorState, str],
) -> None:
    state, url = emulator
    await collect(adapter(url, model="tts-1-hd", voice="onyx").synthesize(TEXT, None))
    body = state.last("/audio/speech").body
    assert (body["model"], body["voice"]) == ("tts-1-hd", "onyx")
    assert "speed" not in body


async def test_rate_limited_reports_retry_after_when_out_of_retries(
    emulator: tuple[EmulatorState, str],
) -> None:
    state, url = emulator
    limited = openai_speech.error_body("Rate limit reached", "requests", "rate_limit_exceeded")
    state.fail_next(Fault(status=429, body=limited, headers={"retry-after": "7"}))
    with pytest.raises(ProviderRateLimitedError) as caught:
        await collect(
            adapter(url, retry=RetryPolicy(retries=1, max_wait_s=2)).synthesize(TEXT, None)
        )
    assert caught.value.retry_after_s == pytest.approx(7)


async def test_insufficient_quota_is_a_quota_error(emulator: tuple[EmulatorState, str]) -> None:
    state, url = emulator
    body = openai_speech.error_body(
        "You exceeded your quota", "insufficient_quota", "insufficient_quota"
    )
    state.fail_next(Fault(status=429, body=body))
    with pytest.raises(ProviderRateLimitedError) as caught:
        await collect(adapter(url).synthesize(TEXT, None))
    assert caught.value.code == "provider_quota_exceeded"


async def test_unknown_voice_is_bad_input(emulator: tuple[EmulatorState, str]) -> None:
    _, url = emulator
    with pytest.raises(BadInputError):
        await collect(adapter(url).synthesize(TEXT, "nobody"))


async def test_voices_are_the_built_in_table() -> None:
    provider = adapter("http://127.0.0.1:9")
    voices = [v.id for v in await provider.voices()]
    assert voices == list(openai_speech.VOICES)
    assert len(voices) == 13
