"""The voice table: each provider's voice for a turn's language, or a clear refusal."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from parley_common.errors import ProviderUnavailableError
from parley_tts.languages import (
    AURA_VOICES,
    ELEVENLABS_MULTILINGUAL_MODEL,
    VoiceChoice,
    is_refusal,
    voice_for,
)
from parley_tts.providers.base import TtsProvider


@dataclass
class _Provider:
    """As much of a provider as the table reads: its name and default model."""

    name: str
    model: str | None = None
    sample_rate: int = 24_000


def _provider(name: str, model: str | None = None) -> TtsProvider:
    return _Provider(name, model)  # type: ignore[return-value]  # only name/model are read


@pytest.mark.parametrize("language", ["es", "fr", "de", "it", "ja"])
def test_aura_speaks_each_language_with_its_own_voice(language: str) -> None:
    aura = _provider("deepgram", "aura-asteria-en")
    choice = voice_for(aura, language, None, None)
    assert choice == VoiceChoice(AURA_VOICES[language], None)
    assert choice.voice is not None
    assert choice.voice.endswith(f"-{language}")
    # An English tts_model of the session does not win over the language.
    assert voice_for(aura, language, None, "aura-2-thalia-en").voice == AURA_VOICES[language]


def test_aura_keeps_a_voice_already_in_the_language_and_goes_back_to_english() -> None:
    aura = _provider("deepgram", "aura-asteria-en")
    assert voice_for(aura, "es-MX", "aura-2-nestor-es", None) == VoiceChoice(
        "aura-2-nestor-es", None
    )
    assert voice_for(aura, "en", None, None) == VoiceChoice(None, None)
    assert voice_for(aura, "en", "aura-2-celeste-es", None) == VoiceChoice(AURA_VOICES["en"], None)


@pytest.mark.parametrize("language", ["pt", "ko", "zh"])
def test_aura_has_no_voice_for_some_languages(language: str) -> None:
    with pytest.raises(ProviderUnavailableError) as refused:
        voice_for(_provider("deepgram", "aura-asteria-en"), language, None, None)
    assert refused.value.code == "voice_language_unsupported"
    assert "Deepgram Aura has no" in refused.value.message
    assert is_refusal(refused.value)


def test_elevenlabs_needs_a_multilingual_model() -> None:
    english_only = _provider("elevenlabs", "eleven_flash_v2")
    assert voice_for(english_only, "de", "voice-1", None) == VoiceChoice(
        "voice-1", ELEVENLABS_MULTILINGUAL_MODEL
    )
    assert voice_for(english_only, "de", None, "eleven_turbo_v2").model == (
        ELEVENLABS_MULTILINGUAL_MODEL
    )
    multilingual = _provider("elevenlabs", "eleven_multilingual_v2")
    assert voice_for(multilingual, "de", "voice-1", None) == VoiceChoice("voice-1", None)
    assert voice_for(english_only, "en", None, None) == VoiceChoice(None, None)


def test_openai_voices_speak_every_language() -> None:
    openai = _provider("openai", "tts-1")
    for language in ("es", "ja", "zh", "ko", "pt"):
        assert voice_for(openai, language, "nova", None) == VoiceChoice("nova", None)


@pytest.mark.parametrize("name", ["local", "playht"])
def test_english_only_voices_refuse_other_languages_and_say_what_to_do(name: str) -> None:
    provider = _provider(name)
    assert voice_for(provider, "en-GB", None, None) == VoiceChoice(None, None)
    with pytest.raises(ProviderUnavailableError) as refused:
        voice_for(provider, "fr", None, None)
    assert refused.value.code == "voice_language_unsupported"
    assert refused.value.message.startswith("French needs another voice")
    assert "openai or elevenlabs" in refused.value.message


def test_an_unknown_language_keeps_the_sessions_choice() -> None:
    assert voice_for(_provider("local"), None, None, None) == VoiceChoice(None, None)
    assert voice_for(_provider("deepgram"), None, "aura-luna-en", None) == VoiceChoice(
        "aura-luna-en", None
    )
    assert not is_refusal(ProviderUnavailableError("down"))
