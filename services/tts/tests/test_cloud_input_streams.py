"""Both input-streaming adapters (ElevenLabs' stream-input socket, Deepgram Aura's socket)
held to the same bar against their emulators: closing or clearing stops the audio and the
connection at once, and handshake and mid-stream failures become the right Parley errors."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import SecretStr
from starlette.applications import Starlette

from parley_common.errors import (
    ConflictError,
    ProviderAuthError,
    ProviderFailedError,
    ProviderRateLimitedError,
)
from parley_common.testing import eventually
from parley_emulators import deepgram_speak, elevenlabs
from parley_emulators.base import EmulatorState, Fault, running
from parley_emulators.speech import collect_until_error
from parley_tts.providers.base import StreamingTtsProvider
from parley_tts.providers.deepgram_aura import DeepgramAuraProvider
from parley_tts.providers.elevenlabs import ElevenLabsProvider


@dataclass(frozen=True)
class Case:
    """One input-streaming provider: its emulator, its adapter, its error body."""

    name: str
    state: Callable[[], EmulatorState]
    app: Callable[[Any], Starlette]
    build: Callable[[str, str], StreamingTtsProvider]
    path: str
    error: Callable[[str], Any]


CASES = [
    Case(
        "elevenlabs",
        elevenlabs.ElevenLabsState,
        elevenlabs.app,
        lambda url, key: ElevenLabsProvider(SecretStr(key), base_url=url, timeout_s=5.0),
        "/stream-input",
        lambda message: elevenlabs.detail("internal_error", message),
    ),
    Case(
        "deepgram",
        EmulatorState,
        deepgram_speak.app,
        lambda url, key: DeepgramAuraProvider(SecretStr(key), base_url=url, timeout_s=5.0),
        "/v1/speak",
        lambda message: deepgram_speak.error_body("INTERNAL", message),
    ),
]


@dataclass
class Harness:
    case: Case
    state: EmulatorState
    url: str
    made: list[Any]

    def adapter(self, key: str = "test-key") -> StreamingTtsProvider:
        provider = self.case.build(self.url, key)
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


async def test_aclose_mid_stream_closes_the_socket_within_100ms(harness: Harness) -> None:
    harness.state.stream_delay_s = 0.05
    stream = await harness.adapter().open_stream(None)
    await stream.send("word " * 100)
    await stream.flush()
    await anext(aiter(stream))
    closed = time.perf_counter()
    await stream.aclose()
    recorded = harness.state.last(harness.case.path)
    await eventually(lambda: recorded.closed_at is not None, within_s=2)
    assert recorded.closed_at is not None
    assert recorded.closed_at - closed < 0.1


async def test_clear_ends_the_audio_at_once(harness: Harness) -> None:
    harness.state.stream_delay_s = 0.05
    stream = await harness.adapter().open_stream(None)
    await stream.send("word " * 100)
    await stream.flush()
    audio = aiter(stream)
    await anext(audio)
    cleared = time.perf_counter()
    await stream.clear()
    assert [chunk async for chunk in audio] == []
    assert time.perf_counter() - cleared < 0.2
    recorded = harness.state.last(harness.case.path)
    if harness.case.name == "deepgram":
        # Aura's Clear drops its queue; the socket may stay open until aclose.
        await eventually(lambda: {"type": "Clear"} in recorded.messages, within_s=2)
    else:
        # ElevenLabs has no clear message: the socket is closed.
        await eventually(lambda: recorded.closed_at is not None, within_s=2)
    await stream.aclose()
    await eventually(lambda: recorded.closed_at is not None, within_s=2)


async def test_wrong_key_is_refused_at_the_handshake(harness: Harness) -> None:
    with pytest.raises(ProviderAuthError) as caught:
        await harness.adapter("secret-wrong-key").open_stream(None)
    assert "secret-wrong-key" not in caught.value.message


async def test_rate_limited_handshake_then_success(harness: Harness) -> None:
    harness.state.fail_next(Fault(status=429, body=harness.case.error("slow down")))
    provider = harness.adapter()
    with pytest.raises(ProviderRateLimitedError):
        await provider.open_stream(None)
    stream = await provider.open_stream(None)
    await stream.send("Fine now.")
    await stream.finish()
    received, error = await collect_until_error(stream)
    assert error is None
    assert b"".join(chunk.pcm for chunk in received)
    await stream.aclose()


async def test_server_error_at_the_handshake(harness: Harness) -> None:
    harness.state.fail_next(Fault(status=503, body=harness.case.error("vendor internals")))
    with pytest.raises(ProviderFailedError) as caught:
        await harness.adapter().open_stream(None)
    assert type(caught.value) is ProviderFailedError


async def test_malformed_frame(harness: Harness) -> None:
    harness.state.fail_next(Fault(kind="malformed"))
    stream = await harness.adapter().open_stream(None)
    await stream.send("Hello there.")
    await stream.finish()
    _, error = await collect_until_error(stream)
    assert isinstance(error, ProviderFailedError)
    assert "malformed" in error.message
    await stream.aclose()


async def test_connection_dropped_mid_stream(harness: Harness) -> None:
    harness.state.fail_next(Fault(kind="drop"))
    stream = await harness.adapter().open_stream(None)
    await stream.send("word " * 50)
    await stream.finish()
    received, error = await collect_until_error(stream)
    assert isinstance(error, ProviderFailedError)
    assert "lost the connection" in error.message
    assert received  # after some audio
    await stream.aclose()


async def test_no_text_after_finish(harness: Harness) -> None:
    stream = await harness.adapter().open_stream(None)
    await stream.send("Hello.")
    await stream.finish()
    with pytest.raises(ConflictError):
        await stream.send("late")
    await stream.aclose()
