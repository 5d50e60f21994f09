"""The scripted STT test double: one script line per utterance, instantly, audio ignored."""

from __future__ import annotations

import time

import pytest

from parley_stt.providers.base import SttProvider
from parley_stt.providers.scripted import DEFAULT_TEXT, TEXT_ENV, ScriptedSttProvider

SPEECH = bytes(640) * 50  # one second of (silent) PCM16: the double does not listen


async def hear(provider: SttProvider, pcm: bytes = SPEECH, language: str | None = "en") -> str:
    """Run one utterance through ``provider`` and return its final text."""
    stream = await provider.open(language)
    await stream.feed(pcm)
    result = await stream.finish()
    await stream.aclose()
    return result.text


async def test_default_text_and_result_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TEXT_ENV, raising=False)
    provider = ScriptedSttProvider()
    stream = await provider.open(None)
    await stream.feed(SPEECH)

    result = await stream.finish()

    assert provider.name == "scripted"
    assert result.text == DEFAULT_TEXT == "hello there"
    assert (result.is_final, result.confidence, result.language) == (True, 1.0, "en")


async def test_text_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TEXT_ENV, "what is the weather like")

    assert await hear(ScriptedSttProvider()) == "what is the weather like"


async def test_each_utterance_hears_the_next_line_then_the_script_repeats() -> None:
    provider = ScriptedSttProvider(["first", "second"])

    heard = [await hear(provider) for _ in range(5)]

    assert heard == ["first", "second", "first", "second", "first"]


async def test_interim_waits_for_audio_and_is_partial() -> None:
    stream = await ScriptedSttProvider(["some words"]).open("de")
    assert await stream.interim() is None

    await stream.feed(b"\x00\x00")
    partial = await stream.interim()

    assert partial is not None
    assert (partial.text, partial.is_final, partial.language) == ("some words", False, "de")


async def test_records_what_each_utterance_received() -> None:
    provider = ScriptedSttProvider(["one", "two"])
    stream = await provider.open("en")
    await stream.feed(SPEECH)
    await stream.finish()
    await stream.feed(SPEECH)  # the turn resumed
    await stream.finish()
    await stream.aclose()
    await hear(provider, pcm=b"", language=None)

    first, second = provider.utterances
    assert (first.text, first.audio_bytes, first.finishes, first.closed) == (
        "one",
        2 * len(SPEECH),
        2,
        True,
    )
    assert (second.text, second.audio_bytes, second.language) == ("two", 0, None)


async def test_is_instant() -> None:
    provider = ScriptedSttProvider()
    started = time.perf_counter()

    for _ in range(1000):
        await hear(provider)

    assert time.perf_counter() - started < 0.5


def test_an_empty_script_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one line"):
        ScriptedSttProvider([])
