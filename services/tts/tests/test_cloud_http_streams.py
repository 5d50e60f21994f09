"""Every cloud adapter's HTTP stream against its emulator, held to the same bar: closing the
stream closes the connection at once, and each kind of failure becomes the right Parley
error (auth, rate limit then success, 5xx, malformed reply, connection lost, stall)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import SecretStr
from starlette.applications import Starlette

from parley_common.errors import (
    ParleyTimeoutError,
    ProviderAuthError,
    ProviderFailedError,
)
from parley_common.testing import eventually
from parley_emulators import deepgram_speak, elevenlabs, openai_speech, playht
from parley_emulators.base import EmulatorState, Fault, running
from parley_emulators.speech import collect, collect_until_error, samples_for
from parley_tts.providers._retry import NO_RETRY, RetryPolicy
from parley_tts.providers.deepgram_aura import DeepgramAuraProvider
from parley_tts.providers.elevenlabs import ElevenLabsProvider
from parley_tts.providers.openai_speech import OpenAiSpeechProvider
from parley_tts.providers.playht import PlayHtProvider

TEXT = "Hello there, this is Parley speaking."
LONG = "word " * 200  # 10 s of emulated audio


@dataclass(frozen=True)
class Case:
    """One provider: its emulator, how to build its adapter, its error body."""

    name: str
    state: Callable[[], EmulatorState]
    app: Callable[[Any], Starlette]
    build: Callable[[str, str, RetryPolicy, float], Any]
    path: str
    error: Callable[[str], Any]


CASES = [
    Case(
        "openai",
        EmulatorState,
        openai_speech.app,
        lambda url, key, retry, t: OpenAiSpeechProvider(
            SecretStr(key), base_url=f"{url}/v1", retry=retry, timeout_s=t
        ),
        "/v1/audio/speech",
        lambda message: openai_speech.error_body(message, "server_error"),
    ),
    Case(
        "elevenlabs",
        elevenlabs.ElevenLabsState,
        elevenlabs.app,
        lambda url, key, retry, t: ElevenLabsProvider(
            SecretStr(key), base_url=url, retry=retry, timeout_s=t
        ),
        "/stream",
        lambda message: elevenlabs.detail("internal_error", message),
    ),
    Case(
        "deepgram",
        EmulatorState,
        deepgram_speak.app,
        lambda url, key, retry, t: DeepgramAuraProvider(
            SecretStr(key), base_url=url, retry=retry, timeout_s=t
        ),
        "/v1/speak",
        lambda message: deepgram_speak.error_body("INTERNAL", message),
    ),
    Case(
        "playht",
        EmulatorState,
        playht.app,
        lambda url, key, retry, t: PlayHtProvider(
            SecretStr(key),
            playht.USER_ID,
            base_url=url,
            voice=str(playht.VOICES[0]["id"]),
            retry=retry,
            timeout_s=t,
        ),
        "/tts/stream",
        lambda message: playht.error_body(message, "INTERNAL"),
    ),
]


@dataclass
class Harness:
    case: Case
    state: EmulatorState
    url: str
    made: list[Any]

    def adapter(
        self, *, key: str = "test-key", retry: RetryPolicy = NO_RETRY, timeout_s: float = 5.0
    ) -> Any:
        provider = self.case.build(self.url, key, retry, timeout_s)
        self.made.append(provider)
        return provider


@pytest.fixture(params=CASES, ids=[case.name for case in CASES])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    case: Case = request.param
    state = case.state()
    async with running(case.app(state)) as url:
        harness = Harness(case, state, url, [])
        yield harness
        for provider in harness.made:
            await provider.aclose()


async def test_closing_the_stream_closes_the_connection_within_100ms(harness: Harness) -> None:
    harness.state.stream_delay_s = 0.05
    stream = harness.adapter().synthesize(LONG, None)
    await anext(stream)
    await anext(stream)
    closed = time.perf_counter()
    await stream.aclose()
    recorded = harness.state.last(harness.case.path)
    await eventually(lambda: recorded.closed_at is not None, within_s=2)
    assert recorded.closed_at is not None
    assert recorded.closed_at - closed < 0.1


async def test_first_audio_arrives_before_synthesis_is_complete(harness: Harness) -> None:
    harness.state.stream_delay_s = 0.05  # 250 chunks: 12 s to stream in full
    started = time.perf_counter()
    stream = harness.adapter().synthesize(LONG, None)
    assert await anext(stream)
    assert time.perf_counter() - started < 2.0
    await stream.aclose()


async def test_wrong_key_is_an_auth_error_that_does_not_show_the_key(harness: Harness) -> None:
    with pytest.raises(ProviderAuthError) as caught:
        await collect(harness.adapter(key="secret-wrong-key").synthesize(TEXT, None))
    assert "secret-wrong-key" not in caught.value.message
    assert caught.value.provider == harness.case.name


async def test_rate_limited_then_success_after_the_retry_after(harness: Harness) -> None:
    limited = Fault(
        status=429, body=harness.case.error("slow down"), headers={"retry-after": "0.2"}
    )
    harness.state.fail_next(limited)
    started = time.perf_counter()
    pcm = await collect(harness.adapter(retry=RetryPolicy(retries=1)).synthesize(TEXT, None))
    assert len(pcm) == 2 * samples_for(TEXT, 24_000)
    assert time.perf_counter() - started >= 0.2
    assert len([r for r in harness.state.requests if harness.case.path in r.path]) == 2


async def test_server_error_is_provider_failed_without_the_vendor_text(harness: Harness) -> None:
    harness.state.fail_next(Fault(status=503, body=harness.case.error("vendor internals")))
    with pytest.raises(ProviderFailedError) as caught:
        await collect(harness.adapter().synthesize(TEXT, None))
    assert type(caught.value) is ProviderFailedError
    assert "vendor internals" not in caught.value.message


async def test_server_error_then_success_is_retried(harness: Harness) -> None:
    harness.state.fail_next(Fault(status=500, body=harness.case.error("oops")))
    retry = RetryPolicy(retries=1, backoff_s=0)
    pcm = await collect(harness.adapter(retry=retry).synthesize(TEXT, None))
    assert len(pcm) == 2 * samples_for(TEXT, 24_000)


async def test_a_reply_that_is_not_audio_is_malformed(harness: Harness) -> None:
    harness.state.fail_next(Fault(kind="malformed"))
    with pytest.raises(ProviderFailedError, match="malformed"):
        await collect(harness.adapter().synthesize(TEXT, None))


async def test_connection_dropped_mid_stream_is_connection_lost(harness: Harness) -> None:
    harness.state.fail_next(Fault(kind="drop"))
    received, error = await collect_until_error(harness.adapter().synthesize(LONG, None))
    assert isinstance(error, ProviderFailedError)
    assert "lost the connection" in error.message
    assert received  # the failure came mid-stream, after audio


async def test_a_stalled_stream_times_out(harness: Harness) -> None:
    harness.state.stream_delay_s = 1.0
    with pytest.raises(ParleyTimeoutError):
        await collect(harness.adapter(timeout_s=0.3).synthesize(LONG, None))


async def test_blank_text_sends_no_request(harness: Harness) -> None:
    assert await collect(harness.adapter().synthesize(" \n", None)) == b""
    assert harness.state.requests == []
