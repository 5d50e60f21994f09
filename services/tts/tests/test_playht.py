"""The legacy PlayHT v2 adapter (plain httpx) against the v2 emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from parley_common.errors import ProviderAuthError
from parley_emulators import playht
from parley_emulators.base import EmulatorState, running
from parley_emulators.speech import collect, samples_for
from parley_tts.providers._audio import WavFormatError, WavStream
from parley_tts.providers._retry import NO_RETRY, RetryPolicy
from parley_tts.providers.playht import PlayHtProvider

TEXT = "Hello there, this is Parley speaking."
VOICE = str(playht.VOICES[0]["id"])

Emulator = tuple[EmulatorState, str]


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    state = EmulatorState()
    async with running(playht.app(state)) as url:
        yield state, url


_made: list[PlayHtProvider] = []


def adapter(
    url: str, *, key: str = "test-key", user: str = playht.USER_ID, retry: RetryPolicy = NO_RETRY
) -> PlayHtProvider:
    provider = PlayHtProvider(SecretStr(key), user, base_url=url, voice=VOICE, retry=retry)
    _made.append(provider)
    return provider


@pytest.fixture(autouse=True)
async def _close_adapters() -> AsyncIterator[None]:
    yield
    while _made:
        await _made.pop().aclose()


async def test_streams_pcm_from_the_wav_stream(emulator: Emulator) -> None:
    state, url = emulator
    pcm = await collect(adapter(url).synthesize(TEXT, None, model="Play3.0-mini", speed=0.8))
    assert len(pcm) == 2 * samples_for(TEXT, 24_000, 0.8)
    recorded = state.last("/tts/stream")
    assert recorded.headers["authorization"] == "Bearer test-key"
    assert recorded.headers["x-user-id"] == playht.USER_ID
    assert recorded.body == {
        "text": TEXT,
        "voice": VOICE,
        "voice_engine": "Play3.0-mini",
        "output_format": "wav",
        "sample_rate": 24_000,
        "speed": 0.8,
    }


async def test_wrong_user(emulator: Emulator) -> None:
    _, url = emulator
    with pytest.raises(ProviderAuthError):
        await collect(adapter(url, user="someone-else").synthesize(TEXT, None))


async def test_voices_are_listed_as_legacy(emulator: Emulator) -> None:
    _, url = emulator
    voices = await adapter(url).voices()
    assert [v.id for v in voices] == [v["id"] for v in playht.VOICES]
    assert all("legacy" in v.name and "shut down" in (v.description or "") for v in voices)


def test_wav_header_split_across_chunks_and_format_checked() -> None:
    header = playht.wav_header(24_000)
    wav = WavStream(24_000)
    out = b"".join(wav.feed(header[i : i + 5]) for i in range(0, len(header), 5))
    assert out == b""
    assert wav.feed(b"\x01\x02") == b"\x01\x02"
    with pytest.raises(WavFormatError):
        WavStream(16_000).feed(header)
    with pytest.raises(WavFormatError):
        WavStream(24_000).feed(b"NOTAWAVE" * 6)
