"""Chooses a session's TTS adapter by name; one shared instance per process and name.

Cloud adapters need their vendor's key (``<VENDOR>_API_KEY``); without it the provider is
listed as unavailable with the variable to set. Endpoints come from ``<VENDOR>_BASE_URL``
and defaults from ``CloudTtsSettings``.
"""

from __future__ import annotations

import os
from typing import Any

from parley_common.contracts.session import TtsProvider as TtsName
from parley_common.errors import ModelNotInstalledError, ProviderUnavailableError
from parley_common.providers import ProviderRegistry, api_key, base_url
from parley_tts.providers._retry import RetryPolicy
from parley_tts.providers.base import TtsProvider
from parley_tts.settings import CloudTtsSettings

REGISTRY: ProviderRegistry[TtsProvider] = ProviderRegistry("TTS", TtsName)

PLAYHT_USER_ID_ENV = "PLAYHT_USER_ID"


@REGISTRY.register(TtsName.LOCAL)
def _local() -> TtsProvider:
    try:
        from parley_tts.providers.piper import PiperTtsProvider

        return PiperTtsProvider()
    except (ImportError, ModelNotInstalledError) as exc:
        raise ProviderUnavailableError(
            "not installed: local TTS needs Piper (GPL-3.0): pip install 'parley-tts[local]'"
        ) from exc


@REGISTRY.register(TtsName.SCRIPTED)
def _scripted() -> TtsProvider:
    from parley_tts.providers.scripted import ScriptedTtsProvider

    ms_per_char = float(os.environ.get("PARLEY_SCRIPTED_TTS_MS_PER_CHAR", "60"))
    return ScriptedTtsProvider(ms_per_char=ms_per_char)


def _transport(settings: CloudTtsSettings) -> dict[str, Any]:
    """What every cloud adapter takes alike: its deadline and retry policy."""
    retry = RetryPolicy(retries=settings.retries, max_wait_s=settings.retry_max_wait_s)
    return {"timeout_s": settings.timeout_s, "retry": retry}


@REGISTRY.register(TtsName.OPENAI)
def _openai() -> TtsProvider:
    key = api_key("openai")
    from parley_tts.providers.openai_speech import OpenAiSpeechProvider

    settings = CloudTtsSettings()
    return OpenAiSpeechProvider(
        key,
        base_url=base_url("openai"),
        model=settings.openai_model,
        voice=settings.openai_voice,
        **_transport(settings),
    )


@REGISTRY.register(TtsName.ELEVENLABS)
def _elevenlabs() -> TtsProvider:
    key = api_key("elevenlabs")
    from parley_tts.providers.elevenlabs import ElevenLabsProvider

    settings = CloudTtsSettings()
    return ElevenLabsProvider(
        key,
        base_url=base_url("elevenlabs"),
        model=settings.elevenlabs_model,
        voice=settings.elevenlabs_voice,
        voices_ttl_s=settings.elevenlabs_voices_ttl_s,
        **_transport(settings),
    )


@REGISTRY.register(TtsName.DEEPGRAM)
def _deepgram() -> TtsProvider:
    key = api_key("deepgram")
    from parley_tts.providers.deepgram_aura import DeepgramAuraProvider

    settings = CloudTtsSettings()
    return DeepgramAuraProvider(
        key,
        base_url=base_url("deepgram"),
        model=settings.deepgram_model,
        **_transport(settings),
    )


@REGISTRY.register(TtsName.PLAYHT)
def _playht() -> TtsProvider:
    from parley_tts.providers.playht import LEGACY_NOTE, PlayHtProvider

    try:
        key = api_key("playht")
    except ProviderUnavailableError as exc:
        raise ProviderUnavailableError(f"{exc.message} ({LEGACY_NOTE})", provider="playht") from exc
    user_id = os.environ.get(PLAYHT_USER_ID_ENV, "").strip()
    if not user_id:
        raise ProviderUnavailableError(
            f"no user id: set {PLAYHT_USER_ID_ENV} ({LEGACY_NOTE})", provider="playht"
        )
    url = base_url("playht")
    if url is None:
        raise ProviderUnavailableError(
            f"{LEGACY_NOTE}; set PLAYHT_BASE_URL to a server that speaks its v2 protocol",
            provider="playht",
        )
    settings = CloudTtsSettings()
    return PlayHtProvider(
        key,
        user_id,
        base_url=url,
        model=settings.playht_model,
        voice=settings.playht_voice,
        voices_ttl_s=settings.playht_voices_ttl_s,
        **_transport(settings),
    )


def get_provider(name: TtsName) -> TtsProvider:
    """The adapter for ``name``; raises ProviderUnavailableError with the reason."""
    return REGISTRY.get(name)
