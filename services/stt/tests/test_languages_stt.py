"""Each live cloud STT with a session's language: detection where the provider can (Deepgram's
``multi`` models, AssemblyAI's multilingual model, both reporting the language they heard), a
clear refusal where it cannot, before any connection is made; the local Whisper keeps to the
nine languages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr

from parley_common.errors import ProviderUnavailableError
from parley_emulators.assemblyai_streaming import app as assemblyai_app
from parley_emulators.base import running
from parley_emulators.deepgram_listen import ListenState
from parley_emulators.deepgram_listen import app as deepgram_app
from parley_emulators.spoken import SttEmulatorState
from parley_stt.providers.assemblyai_streaming import (
    ENGLISH_MODEL,
    MULTILINGUAL_MODEL,
    AssemblyAiStreamingProvider,
)
from parley_stt.providers.base import SttProvider
from parley_stt.providers.deepgram_live import DeepgramLiveProvider
from parley_stt.providers.languages import likeliest_supported
from parley_stt.providers.local_whisper import transcribe
from parley_stt.settings import CloudSttSettings

KEY = "test-key"
HALF_SECOND = bytes(16_000)
_SETTINGS = {"stt_keepalive_s": 5.0, "stt_finalize_timeout_s": 2.0}


def _settings(**values: object) -> CloudSttSettings:
    return CloudSttSettings.model_validate({**_SETTINGS, **values})


async def _hear(provider: SttProvider, language: str | None, model: str | None = None) -> str:
    """The language ``provider`` reports for half a second of audio in ``language``."""
    stream = await provider.open(language, model=model)
    try:
        await stream.feed(HALF_SECOND)
        result = await stream.finish()
    finally:
        await stream.aclose()
    assert result.language is not None
    return result.language


async def _refused(provider: SttProvider, language: str | None, model: str | None = None) -> str:
    """The code of ``provider``'s refusal of ``language`` (raised by ``finish``)."""
    stream = await provider.open(language, model=model)
    await stream.feed(HALF_SECOND)
    with pytest.raises(ProviderUnavailableError) as refused:
        await stream.finish()
    await stream.aclose()
    assert refused.value.provider == provider.name
    return refused.value.code


@pytest.mark.parametrize("language", ["es", "fr", "de"])
async def test_deepgram_detects_with_a_multilingual_model(language: str) -> None:
    state = ListenState(api_key=KEY, transcript="hola")
    state.language = language
    async with running(deepgram_app(state)) as url:
        provider = DeepgramLiveProvider(SecretStr(KEY), url, _settings())
        assert await _hear(provider, None) == language
        assert state.last("/v1/listen").query["language"] == "multi"


async def test_deepgram_refuses_to_detect_with_a_model_that_cannot() -> None:
    state = ListenState(api_key=KEY, transcript="hola")
    async with running(deepgram_app(state)) as url:
        provider = DeepgramLiveProvider(SecretStr(KEY), url, _settings())
        assert await _refused(provider, None, model="enhanced") == (
            "language_detection_unsupported"
        )
        assert not state.requests, "nothing was sent to Deepgram"
        # A fixed language is passed through to the same model.
        await _hear(provider, "es", model="enhanced")
        assert state.last("/v1/listen").query["language"] == "es"


async def test_assemblyai_detects_the_languages_of_its_multilingual_model() -> None:
    state = SttEmulatorState(api_key=KEY, transcript="bonjour")
    state.language = "fr"
    async with running(assemblyai_app(state)) as url:
        provider = AssemblyAiStreamingProvider(SecretStr(KEY), url, _settings())
        assert await _hear(provider, None) == "fr"
        query = state.last("/v3/ws").query
        assert (query["speech_model"], query["language_detection"]) == (
            MULTILINGUAL_MODEL,
            "true",
        )
        await _hear(provider, "pt-BR")
        assert state.last("/v3/ws").query["speech_model"] == MULTILINGUAL_MODEL


@pytest.mark.parametrize(
    ("language", "model", "code"),
    [
        ("ja", None, "language_unsupported"),
        ("zh-CN", None, "language_unsupported"),
        ("ko", MULTILINGUAL_MODEL, "language_unsupported"),
        ("es", ENGLISH_MODEL, "language_unsupported"),
        (None, ENGLISH_MODEL, "language_detection_unsupported"),
    ],
)
async def test_assemblyai_refuses_what_its_models_cannot_hear(
    language: str | None, model: str | None, code: str
) -> None:
    state = SttEmulatorState(api_key=KEY)
    async with running(assemblyai_app(state)) as url:
        provider = AssemblyAiStreamingProvider(SecretStr(KEY), url, _settings())
        assert await _refused(provider, language, model) == code
    assert not state.requests, "nothing was sent to AssemblyAI"


@dataclass
class _Info:
    language: str
    all_language_probs: list[tuple[str, float]] | None


@dataclass
class _Segment:
    text: str
    start: float = 0.0
    end: float = 1.0
    avg_logprob: float = -0.1
    tokens: tuple[int, ...] = (1, 2)
    words: tuple[()] = ()


class _Whisper:
    """A faster-whisper model that detects Latin, German a close second."""

    def __init__(self) -> None:
        self.asked: list[str | None] = []

    def transcribe(self, audio: Any, *, language: str | None, **_: Any) -> tuple[Any, _Info]:
        self.asked.append(language)
        probabilities = [("la", 0.5), ("de", 0.3), ("en", 0.1), ("nl", 0.1)]
        detected = language or "la"
        return iter([_Segment(f"text in {detected}")]), _Info(detected, probabilities)


def test_the_local_whisper_keeps_to_the_nine_languages() -> None:
    whisper = _Whisper()
    result = transcribe(whisper, np.zeros(16_000, dtype=np.float32), None, final=True)
    assert whisper.asked == [None, "de"]
    assert (result.language, result.text) == ("de", "text in de")
    # A language the session fixed is never second-guessed.
    whisper.asked.clear()
    transcribe(whisper, np.zeros(16_000, dtype=np.float32), "la", final=True)
    assert whisper.asked == ["la"]


def test_the_likeliest_of_the_nine() -> None:
    assert likeliest_supported([("la", 0.6), ("it", 0.2), ("es", 0.15)]) == "it"
    assert likeliest_supported([("la", 0.6), ("ru", 0.4)]) is None
    assert likeliest_supported(None) is None
