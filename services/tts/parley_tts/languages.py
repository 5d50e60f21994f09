"""Which voice speaks a turn in the user's language, per TTS provider.

- OpenAI: every voice and model speaks every supported language; nothing changes.
- ElevenLabs: voices are multilingual, models are not all: an English-only model
  (``eleven_flash_v2``, ``eleven_turbo_v2``, ``eleven_monolingual_v1``) is replaced by
  ``eleven_flash_v2_5`` (32 languages, the low-latency one) for any other language.
- Deepgram Aura: a model is one voice in one language (``aura-2-celeste-es``): a voice of
  another language is replaced by the language's default below; Aura-2 has none for
  Portuguese, Korean or Chinese.
- The offline Piper voice and PlayHT's English voices speak English only.

A language without a voice is refused with ``voice_language_unsupported`` rather than read
out by an English voice.
"""

from __future__ import annotations

from dataclasses import dataclass

from parley_common.errors import ProviderUnavailableError
from parley_common.languages import LANGUAGE_NAMES, supported_language
from parley_tts.providers.base import TtsProvider

__all__ = ["AURA_VOICES", "ELEVENLABS_MULTILINGUAL_MODEL", "VoiceChoice", "is_refusal", "voice_for"]

CODE = "voice_language_unsupported"
ELEVENLABS_MULTILINGUAL_MODEL = "eleven_flash_v2_5"
_ELEVENLABS_ENGLISH_ONLY = frozenset(
    {"eleven_monolingual_v1", "eleven_turbo_v2", "eleven_flash_v2"}
)
# One Aura-2 voice per language Deepgram speaks (its model names end in the language).
AURA_VOICES = {
    "en": "aura-2-thalia-en",
    "es": "aura-2-celeste-es",
    "fr": "aura-2-agathe-fr",
    "de": "aura-2-julius-de",
    "it": "aura-2-livia-it",
    "ja": "aura-2-fujin-ja",
}
_CLOUD = "tts_provider openai or elevenlabs"
# Providers with no voice for a language other than English, and what to say instead.
_ENGLISH_ONLY = {
    "local": f"the offline voice speaks only English; choose a cloud voice ({_CLOUD})",
    "playht": f"the PlayHT voices speak only English; choose {_CLOUD}",
}


@dataclass(frozen=True, slots=True)
class VoiceChoice:
    """The voice and model to ask a provider for (None: its configured default)."""

    voice: str | None
    model: str | None


def voice_for(
    provider: TtsProvider, language: str | None, voice: str | None, model: str | None
) -> VoiceChoice:
    """The voice and model ``provider`` speaks ``language`` with, given the session's own
    ``voice`` and ``model`` (None: the provider's defaults). An unknown language (the STT did
    not say) keeps the session's choice.

    Raises:
        ProviderUnavailableError: (code ``voice_language_unsupported``) the provider has no
            voice for the language.
    """
    code = supported_language(language)
    if code is None:
        return VoiceChoice(voice, model)
    if provider.name == "deepgram":
        return _aura(provider, code, voice, model)
    if code == "en":
        return VoiceChoice(voice, model)
    if provider.name in _ENGLISH_ONLY:
        raise _refused(provider.name, code, _ENGLISH_ONLY[provider.name])
    if provider.name == "elevenlabs":
        chosen = model or getattr(provider, "model", None)
        if chosen in _ELEVENLABS_ENGLISH_ONLY:
            return VoiceChoice(voice, ELEVENLABS_MULTILINGUAL_MODEL)
    return VoiceChoice(voice, model)


def _aura(provider: TtsProvider, code: str, voice: str | None, model: str | None) -> VoiceChoice:
    # An Aura model names its voice and ends in its language: aura-asteria-en, aura-2-celeste-es.
    chosen = model or voice or getattr(provider, "model", None) or ""
    if chosen.rsplit("-", 1)[-1] == code:
        return VoiceChoice(voice, model)
    if code not in AURA_VOICES:
        why = f"Deepgram Aura has no {LANGUAGE_NAMES[code]} voice; choose {_CLOUD}"
        raise _refused(provider.name, code, why)
    return VoiceChoice(AURA_VOICES[code], None)


def _refused(provider: str, code: str, why: str) -> ProviderUnavailableError:
    return ProviderUnavailableError(
        f"{LANGUAGE_NAMES[code]} needs another voice: {why}", code=CODE, provider=provider
    )


def is_refusal(exc: BaseException) -> bool:
    """Whether ``exc`` is ``voice_for``'s refusal (the turn's other sentences would be too)."""
    return isinstance(exc, ProviderUnavailableError) and exc.code == CODE
