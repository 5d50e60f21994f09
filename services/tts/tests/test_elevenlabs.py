"""ElevenLabs adapter: the HTTP stream through the official SDK, the input-streaming
WebSocket through its documented protocol, and the live voices list, against the emulator."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterable, AsyncIterator

import pytest
from pydantic import SecretStr

from parley_common.errors import (
    BadInputError,
    ProviderAuthError,
    ProviderRateLimitedError,
)
from parley_emulators import elevenlabs
from parley_emulators.base import Fault, running
from parley_emulators.speech import collect, samples_for
from parley_tts.providers._retry import NO_RETRY, RetryPolicy
from parley_tts.providers.base import SpokenChunk, StreamingTtsProvider
from parley_tts.providers.elevenlabs import ElevenLabsProvider

TEXT = "Hello there, this is Parley speaking."
GEORGE = "JBFqnCBsd6RMkjVDRZzb"
SARAH = "EXAVITQu4vr4xnSDxMaL"

Emulator = tuple[elevenlabs.ElevenLabsState, str]


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    state = elevenlabs.ElevenLabsState()
    async with running(elevenlabs.app(state)) as url:
        yield state, url


_made: list[ElevenLabsProvider] = []


def adapter(
    url: str,
    *,
    key: str = "test-key",
    retry: RetryPolicy = NO_RETRY,
    voices_ttl_s: float = 300.0,
    timeout_s: float = 5.0,
) -> ElevenLabsProvider:
    provider = ElevenLabsProvider(
        SecretStr(key), base_url=url, retry=retry, voices_ttl_s=voices_ttl_s, timeout_s=timeout_s
    )
    _made.append(provider)
    return provider


@pytest.fixture(autouse=True)
async def _close_adapters() -> AsyncIterator[None]:
    yield
    while _made:
        await _made.pop().aclose()


# -- HTTP stream ----------------------------------------------------------------------------


async def test_http_stream_sends_model_voice_speed_and_gets_pcm_24k(emulator: Emulator) -> None:
    state, url = emulator
    provider = adapter(url)
    assert provider.sample_rate == 24_000
    pcm = await collect(provider.synthesize(TEXT, SARAH, model="eleven_turbo_v2_5", speed=1.1))
    assert len(pcm) == 2 * samples_for(TEXT, 24_000, 1.1)
    recorded = state.last("/stream")
    assert recorded.path == f"/v1/text-to-speech/{SARAH}/stream"
    assert recorded.query["output_format"] == "pcm_24000"
    assert recorded.headers["xi-api-key"] == "test-key"
    assert recorded.body["model_id"] == "eleven_turbo_v2_5"
    assert recorded.body["voice_settings"]["speed"] == 1.1


async def test_http_defaults_are_flash_and_the_configured_voice(emulator: Emulator) -> None:
    state, url = emulator
    await collect(adapter(url).synthesize(TEXT, None))
    recorded = state.last("/stream")
    assert recorded.path == f"/v1/text-to-speech/{GEORGE}/stream"
    assert recorded.body["model_id"] == "eleven_flash_v2_5"


async def test_http_quota_exceeded_is_a_quota_error_not_auth(emulator: Emulator) -> None:
    state, url = emulator
    body = elevenlabs.detail("quota_exceeded", "This request exceeds your quota.")
    state.fail_next(Fault(status=401, body=body), Fault(status=401, body=body))
    with pytest.raises(ProviderRateLimitedError) as caught:
        await collect(adapter(url, retry=RetryPolicy(retries=1)).synthesize(TEXT, None))
    assert caught.value.code == "provider_quota_exceeded"
    assert len(state.requests) == 1  # waiting does not lift a quota: no retry


async def test_http_unknown_voice_is_bad_input(emulator: Emulator) -> None:
    _, url = emulator
    with pytest.raises(BadInputError, match="voice"):
        await collect(adapter(url).synthesize(TEXT, "no-such-voice"))


# -- input-streaming WebSocket ----------------------------------------------------------------


async def drain(stream: AsyncIterable[SpokenChunk]) -> list[SpokenChunk]:
    return [chunk async for chunk in stream]


async def test_ws_streams_deltas_and_aligns_audio_to_the_text(emulator: Emulator) -> None:
    state, url = emulator
    provider = adapter(url)
    assert isinstance(provider, StreamingTtsProvider)
    stream = await provider.open_stream(
        SARAH, model="eleven_turbo_v2_5", speed=1.1, sample_rate=16_000
    )
    assert stream.sample_rate == 16_000
    listener = asyncio.create_task(drain(stream))
    first, second = "Hello there. ", "How are you today?"
    for delta in ("Hel", "lo the", "re. "):
        await stream.send(delta)
    await stream.flush()
    for delta in ("How are", " you today?"):
        await stream.send(delta)
    await stream.finish()
    chunks = await asyncio.wait_for(listener, 5)
    await stream.aclose()

    pcm = b"".join(c.pcm for c in chunks)
    assert len(pcm) == 2 * (samples_for(first, 16_000, 1.1) + samples_for(second, 16_000, 1.1))
    # Spans are in order, cover the whole reply and end exactly at its end.
    assert chunks[0].text_start == 0
    assert all(a.text_end == b.text_start for a, b in itertools.pairwise(chunks))
    assert chunks[-1].text_end == len(first + second)
    recorded = state.last("/stream-input")
    assert recorded.query == {"model_id": "eleven_turbo_v2_5", "output_format": "pcm_16000"}
    assert recorded.headers["xi-api-key"] == "test-key"
    messages = recorded.messages
    assert messages[0] == {"text": " ", "voice_settings": {"speed": 1.1}}
    assert messages[-1] == {"text": ""}
    assert [m for m in messages if m.get("flush")] == [{"text": " ", "flush": True}]
    assert "".join(m["text"] for m in messages[1:] if not m.get("flush")) == first + second


async def test_ws_picks_the_pcm_rate_nearest_the_session_rate(emulator: Emulator) -> None:
    _, url = emulator
    stream = await adapter(url).open_stream(None, sample_rate=22_000)
    assert stream.sample_rate == 22_050
    await stream.aclose()


async def test_ws_quota_exceeded_in_band(emulator: Emulator) -> None:
    state, url = emulator
    state.fail_next(Fault(status=1008, body="quota_exceeded", kind="close"))
    stream = await adapter(url).open_stream(None)
    await stream.send("Hello there.")
    await stream.finish()
    with pytest.raises(ProviderRateLimitedError) as caught:
        await drain(stream)
    assert caught.value.code == "provider_quota_exceeded"
    await stream.aclose()


# -- voices -----------------------------------------------------------------------------------


async def test_voices_are_live_and_cached_for_the_ttl(emulator: Emulator) -> None:
    state, url = emulator
    provider = adapter(url, voices_ttl_s=0.3)
    voices = await provider.voices()
    assert [(v.id, v.name, v.gender) for v in voices] == [
        (GEORGE, "George", "male"),
        (SARAH, "Sarah", "female"),
    ]
    await provider.voices()
    assert len([r for r in state.requests if r.path == "/v1/voices"]) == 1
    state.voices.append({"voice_id": "new", "name": "Cloned", "labels": {}})
    await asyncio.sleep(0.35)
    assert "new" in {v.id for v in await provider.voices()}
    assert len([r for r in state.requests if r.path == "/v1/voices"]) == 2


async def test_voices_wrong_key_is_an_auth_error(emulator: Emulator) -> None:
    _, url = emulator
    with pytest.raises(ProviderAuthError):
        await adapter(url, key="nope").voices()
