"""Groq Whisper through the groq SDK against the transcription emulator (Groq's path):
verbose_json with words, confidence and language, the model choice, cancellation, and
every failure translated."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from pydantic import SecretStr

from parley_common.errors import (
    ParleyTimeoutError,
    ProviderAuthError,
    ProviderFailedError,
    ProviderRateLimitedError,
)
from parley_common.testing import eventually
from parley_emulators.base import Fault, Recorded, running
from parley_emulators.openai_transcribe import app
from parley_emulators.spoken import BYTES_PER_SECOND, SttEmulatorState
from parley_stt.providers.base import SttStream
from parley_stt.providers.groq_stt import GroqSttProvider
from parley_stt.settings import CloudSttSettings

KEY = "gsk-test-key"
PATH = "/openai/v1/audio/transcriptions"


@dataclass
class Groq:
    state: SttEmulatorState
    url: str
    built: list[GroqSttProvider] = field(default_factory=list)

    def provider(self, **settings: object) -> GroqSttProvider:
        values: dict[str, object] = {"stt_cloud_retries": 0}
        values.update(settings)
        provider = GroqSttProvider(
            SecretStr(KEY), self.url, CloudSttSettings.model_validate(values)
        )
        self.built.append(provider)
        return provider

    def request(self) -> Recorded:
        return self.state.last(PATH)


@pytest.fixture
async def groq() -> AsyncIterator[Groq]:
    state = SttEmulatorState(api_key=KEY, transcript="Hello there, how are you today?")
    async with running(app(state)) as url:
        emulator = Groq(state, url)
        yield emulator
        for provider in emulator.built:
            await provider.aclose()


async def opened(provider: GroqSttProvider, seconds: float, model: str | None = None) -> SttStream:
    """An utterance of ``seconds`` of audio, not finished yet."""
    stream = await provider.open("en", model=model)
    await stream.feed(bytes(round(seconds * BYTES_PER_SECOND)))
    return stream


async def test_verbose_json_gives_words_confidence_and_language(groq: Groq) -> None:
    stream = await opened(groq.provider(), 0.96)

    result = await stream.finish()
    await stream.aclose()

    assert result.text == "Hello there, how are"
    assert result.confidence == pytest.approx(math.exp(-0.15))
    assert result.language == "en"
    assert [(w.word, w.start) for w in result.words][:2] == [("Hello", 0.0), ("there,", 0.25)]
    body = groq.request().body
    assert (body["model"], body["response_format"], body["language"]) == (
        "whisper-large-v3",
        "verbose_json",
        "en",
    )
    assert groq.request().headers["authorization"] == f"Bearer {KEY}"


async def test_no_partials_and_one_request_per_audio_length(groq: Groq) -> None:
    provider = groq.provider()
    stream = await opened(provider, 0.5)

    assert provider.pushes_partials is False
    assert await stream.interim() is None
    first = await stream.finish()
    assert await stream.finish() == first
    await stream.aclose()
    assert len(groq.state.requests) == 1


@pytest.mark.parametrize(
    ("configured", "asked", "sent"),
    [
        ("whisper-large-v3", "whisper-large-v3-turbo", "whisper-large-v3-turbo"),
        ("whisper-large-v3-turbo", None, "whisper-large-v3-turbo"),
    ],
)
async def test_model_of_the_session_else_the_configured_default(
    groq: Groq, configured: str, asked: str | None, sent: str
) -> None:
    stream = await opened(groq.provider(groq_stt_model=configured), 0.3, model=asked)
    await stream.finish()
    await stream.aclose()

    assert groq.request().body["model"] == sent


async def test_wrong_key(groq: Groq) -> None:
    groq.state.api_key = "another"
    stream = await opened(groq.provider(), 0.5)

    with pytest.raises(ProviderAuthError) as caught:
        await stream.finish()
    await stream.aclose()

    assert caught.value.provider == "groq"
    assert "GROQ_API_KEY" in caught.value.message
    assert KEY not in caught.value.message


async def test_rate_limited_then_the_sdk_retry_succeeds(groq: Groq) -> None:
    groq.state.fail_next(Fault(status=429, headers={"retry-after-ms": "20"}))
    stream = await opened(groq.provider(stt_cloud_retries=1), 0.5)

    result = await stream.finish()
    await stream.aclose()

    assert result.text == "Hello there,"
    assert len(groq.state.requests) == 2


async def test_rate_limited_without_retries_carries_the_hint(groq: Groq) -> None:
    groq.state.fail_next(Fault(status=429, headers={"retry-after": "3"}))
    stream = await opened(groq.provider(), 0.5)

    with pytest.raises(ProviderRateLimitedError) as caught:
        await stream.finish()
    await stream.aclose()

    assert caught.value.retry_after_s == pytest.approx(3.0)


async def test_server_error(groq: Groq) -> None:
    groq.state.fail_next(Fault(status=500))
    stream = await opened(groq.provider(), 0.5)

    with pytest.raises(ProviderFailedError, match="HTTP 500"):
        await stream.finish()
    await stream.aclose()


async def test_malformed_reply(groq: Groq) -> None:
    groq.state.fail_next(Fault(kind="malformed"))
    stream = await opened(groq.provider(), 0.5)

    with pytest.raises(ProviderFailedError, match="malformed"):
        await stream.finish()
    await stream.aclose()


async def test_cancelled_mid_request_closes_the_connection_at_once(groq: Groq) -> None:
    groq.state.stream_delay_s = 2.0
    stream = await opened(groq.provider(), 0.5)
    finishing = asyncio.create_task(stream.finish())
    await eventually(lambda: bool(groq.state.requests), 2)
    await asyncio.sleep(0.05)

    finishing.cancel()
    cancelled_at = time.perf_counter()
    with pytest.raises(asyncio.CancelledError):
        await finishing
    request = groq.request()
    await eventually(lambda: request.closed_at is not None, 1)
    await stream.aclose()

    assert request.closed_at is not None
    assert request.closed_at - cancelled_at < 0.1


async def test_a_slow_answer_times_out(groq: Groq) -> None:
    groq.state.stream_delay_s = 2.0
    stream = await opened(groq.provider(stt_cloud_timeout_s=0.2), 0.5)

    with pytest.raises(ParleyTimeoutError, match="Groq did not return a transcript"):
        await stream.finish()
    await stream.aclose()
