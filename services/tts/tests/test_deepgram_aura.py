"""Deepgram Aura adapter through the official SDK (REST and WebSocket) against the emulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator

import pytest
from pydantic import SecretStr

from parley_common.testing import eventually
from parley_emulators import deepgram_speak
from parley_emulators.base import EmulatorState, running
from parley_emulators.speech import collect, samples_for
from parley_tts.providers._retry import NO_RETRY, RetryPolicy
from parley_tts.providers.base import SpokenChunk, StreamingTtsProvider, TtsInputStream
from parley_tts.providers.deepgram_aura import DeepgramAuraProvider

TEXT = "Hello there, this is Parley speaking."

Emulator = tuple[EmulatorState, str]


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    state = EmulatorState()
    async with running(deepgram_speak.app(state)) as url:
        yield state, url


_made: list[DeepgramAuraProvider] = []


def adapter(
    url: str, *, key: str = "test-key", retry: RetryPolicy = NO_RETRY, timeout_s: float = 5.0
) -> DeepgramAuraProvider:
    provider = DeepgramAuraProvider(SecretStr(key), base_url=url, retry=retry, timeout_s=timeout_s)
    _made.append(provider)
    return provider


@pytest.fixture(autouse=True)
async def _close_adapters() -> AsyncIterator[None]:
    yield
    while _made:
        await _made.pop().aclose()


# -- REST -----------------------------------------------------------------------------------


async def test_rest_streams_linear16_with_model_and_speed(emulator: Emulator) -> None:
    state, url = emulator
    provider = adapter(url)
    pcm = await collect(provider.synthesize(TEXT, "aura-luna-en", speed=1.2))
    assert len(pcm) == 2 * samples_for(TEXT, 24_000, 1.2)
    recorded = state.last("/v1/speak")
    assert recorded.method == "POST"
    assert recorded.headers["authorization"] == "Token test-key"
    assert recorded.body == {"text": TEXT}
    assert recorded.query["model"] == "aura-luna-en"
    assert recorded.query["encoding"] == "linear16"
    assert recorded.query["container"] == "none"
    assert float(recorded.query["sample_rate"]) == 24_000
    assert float(recorded.query["speed"]) == 1.2


async def test_model_choice_session_model_then_voice_then_default(emulator: Emulator) -> None:
    state, url = emulator
    provider = adapter(url)
    await collect(provider.synthesize(TEXT, "aura-luna-en", model="aura-2-thalia-en"))
    assert state.last("/v1/speak").query["model"] == "aura-2-thalia-en"
    await collect(provider.synthesize(TEXT, None))
    assert state.last("/v1/speak").query["model"] == "aura-asteria-en"


# -- WebSocket ------------------------------------------------------------------------------


async def drain(stream: AsyncIterable[SpokenChunk]) -> list[SpokenChunk]:
    return [chunk async for chunk in stream]


async def test_ws_speak_flush_spans_follow_the_flushes(emulator: Emulator) -> None:
    state, url = emulator
    provider = adapter(url)
    assert isinstance(provider, StreamingTtsProvider)
    stream: TtsInputStream = await provider.open_stream(
        "aura-orion-en", speed=0.9, sample_rate=16_000
    )
    assert stream.sample_rate == 16_000
    listener = asyncio.create_task(drain(stream))
    first, second = "Hello there. ", "How are you today?"
    await stream.send("Hello ")
    await stream.send("there. ")
    await stream.flush()
    await stream.send(second)
    await stream.finish()
    chunks = await asyncio.wait_for(listener, 5)
    await stream.aclose()

    one = samples_for(first, 16_000, 0.9)
    two = samples_for(second, 16_000, 0.9)
    assert len(b"".join(c.pcm for c in chunks)) == 2 * (one + two)
    spans = {(c.text_start, c.text_end) for c in chunks}
    assert spans == {(0, len(first)), (len(first), len(first + second))}
    recorded = state.last("/v1/speak")
    assert recorded.query == {
        "model": "aura-orion-en",
        "encoding": "linear16",
        "sample_rate": "16000",
        "speed": "0.9",
    }
    await eventually(lambda: recorded.closed_at is not None, within_s=2)
    kinds = [m["type"] for m in recorded.messages]
    assert kinds == ["Speak", "Speak", "Flush", "Speak", "Flush", "Close"]


async def test_ws_rate_is_the_nearest_linear16_rate(emulator: Emulator) -> None:
    _, url = emulator
    stream = await adapter(url).open_stream(None, sample_rate=22_050)
    assert stream.sample_rate == 24_000
    await stream.aclose()


async def test_voices_are_s2s_ten_aura_voices() -> None:
    voices = await adapter("http://127.0.0.1:9").voices()
    assert len(voices) == 10
    assert {v.id for v in voices} >= {"aura-asteria-en", "aura-orpheus-en"}
    assert all(v.id.startswith("aura-") for v in voices)
