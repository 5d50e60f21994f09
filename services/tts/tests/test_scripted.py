"""The scripted TTS test double: deterministic, instant, sized by the text."""

from __future__ import annotations

import time

import numpy as np
import pytest

from parley_tts.providers.base import TtsProvider
from parley_tts.providers.scripted import ScriptedTtsProvider


async def collect(provider: TtsProvider, text: str, voice: str | None = None) -> list[bytes]:
    return [chunk async for chunk in provider.synthesize(text, voice)]


async def test_is_a_tts_provider_named_scripted() -> None:
    provider: TtsProvider = ScriptedTtsProvider()  # mypy checks the protocol here
    assert provider.name == "scripted"
    assert provider.sample_rate == 24_000
    assert [v.id for v in await provider.voices()] == ["scripted"]


async def test_audio_is_a_quiet_tone_sized_by_the_text() -> None:
    text = "Hello there, this is a test."
    chunks = await collect(ScriptedTtsProvider(), text)
    pcm = np.frombuffer(b"".join(chunks), dtype="<i2")
    assert len(pcm) == round(24_000 * len(text) * 0.060)
    assert all(len(chunk) == 960 for chunk in chunks[:-1])  # 20 ms at 24 kHz
    assert 0 < len(chunks[-1]) <= 960
    assert len(chunks[-1]) % 2 == 0
    assert 1000 < np.abs(pcm).max() < 8000
    spectrum = np.abs(np.fft.rfft(pcm))
    assert np.argmax(spectrum) * 24_000 / len(pcm) == pytest.approx(440, abs=2)


async def test_same_text_same_bytes() -> None:
    provider = ScriptedTtsProvider()
    assert await collect(provider, "Again.") == await collect(provider, "Again.")


async def test_duration_and_chunk_size_are_configurable() -> None:
    chunks = await collect(ScriptedTtsProvider(ms_per_char=10, chunk_ms=40), "x" * 30)
    assert sum(len(c) for c in chunks) // 2 == 24_000 * 30 * 10 // 1000
    assert len(chunks[0]) == 2 * 24_000 * 40 // 1000


async def test_is_instant() -> None:
    start = time.perf_counter()
    chunks = await collect(ScriptedTtsProvider(), "x" * 500)  # 30 s of audio
    assert sum(len(c) for c in chunks) == 2 * 24_000 * 30
    assert time.perf_counter() - start < 0.5


async def test_blank_text_yields_nothing() -> None:
    assert await collect(ScriptedTtsProvider(), "  \n") == []


async def test_voice_choice() -> None:
    provider = ScriptedTtsProvider()
    assert await collect(provider, "Hi.", "scripted") == await collect(provider, "Hi.", None)
    with pytest.raises(ValueError, match="unknown voice 'joe'"):
        provider.synthesize("Hi.", "joe")  # at the call, before any iteration


async def test_closing_early_stops_the_stream() -> None:
    stream = ScriptedTtsProvider().synthesize("A long reply to be cut off. " * 10, None)
    first = await anext(stream)
    await stream.aclose()
    assert len(first) == 960
    with pytest.raises(StopAsyncIteration):
        await anext(stream)


def test_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError, match="ms_per_char"):
        ScriptedTtsProvider(ms_per_char=0)
