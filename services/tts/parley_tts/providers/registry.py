"""Chooses a session's TTS adapter by name; one shared instance per process and name."""

from __future__ import annotations

import os

from parley_common.contracts.session import TtsProvider as TtsName
from parley_common.errors import ModelNotInstalledError, ProviderUnavailableError
from parley_common.providers import ProviderRegistry
from parley_tts.providers.base import TtsProvider

REGISTRY: ProviderRegistry[TtsProvider] = ProviderRegistry("TTS", TtsName)


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


def get_provider(name: TtsName) -> TtsProvider:
    """The adapter for ``name``; raises ProviderUnavailableError with the reason."""
    return REGISTRY.get(name)
