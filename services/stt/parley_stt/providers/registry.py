"""Chooses a session's STT adapter by name; one shared instance per process and name."""

from __future__ import annotations

import functools

from parley_common.contracts.session import SttProvider as SttName
from parley_common.providers import ProviderUnavailableError, require_test_providers
from parley_stt.providers.base import SttProvider


# Cached: one instance per process and name, so a model loads once. Errors are not cached,
# so a provider that becomes available (a key set, an extra installed) is picked up.
@functools.cache
def get_provider(name: SttName) -> SttProvider:
    """The adapter for ``name``; raises ProviderUnavailableError with the reason."""
    provider: SttProvider
    if name is SttName.LOCAL:
        try:
            from parley_stt.providers.local_whisper import LocalWhisperProvider
        except ImportError as exc:  # the [local] extra is not installed
            raise ProviderUnavailableError(
                "local STT needs the faster-whisper extra: pip install 'parley-stt[local]'"
            ) from exc
        provider = LocalWhisperProvider()
    elif name is SttName.SCRIPTED:
        require_test_providers("STT")
        from parley_stt.providers.scripted import ScriptedSttProvider

        provider = ScriptedSttProvider()
    else:
        raise ProviderUnavailableError(f"STT provider '{name.value}' is not available here")
    return provider
