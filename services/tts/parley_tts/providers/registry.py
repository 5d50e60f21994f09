"""Chooses a session's TTS adapter by name; one shared instance per process and name."""

from __future__ import annotations

import functools
import os

from parley_common.contracts.session import TtsProvider as TtsName
from parley_common.providers import ProviderUnavailableError, require_test_providers
from parley_tts.providers.base import TtsProvider


# Cached: one instance per process and name, so a model loads once. Errors are not cached,
# so a provider that becomes available (a key set, an extra installed) is picked up.
@functools.cache
def get_provider(name: TtsName) -> TtsProvider:
    """The adapter for ``name``; raises ProviderUnavailableError with the reason."""
    provider: TtsProvider
    if name is TtsName.LOCAL:
        try:
            from parley_tts.models import ModelNotInstalledError
            from parley_tts.providers.piper import PiperTtsProvider

            provider = PiperTtsProvider()
        except (ImportError, ModelNotInstalledError) as exc:
            raise ProviderUnavailableError(
                "local TTS needs Piper (GPL-3.0): pip install 'parley-tts[local]'"
            ) from exc
    elif name is TtsName.SCRIPTED:
        require_test_providers("TTS")
        from parley_tts.providers.scripted import ScriptedTtsProvider

        ms_per_char = float(os.environ.get("PARLEY_SCRIPTED_TTS_MS_PER_CHAR", "60"))
        provider = ScriptedTtsProvider(ms_per_char=ms_per_char)
    else:
        raise ProviderUnavailableError(f"TTS provider '{name.value}' is not available here")
    return provider
