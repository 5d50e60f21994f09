"""Chooses a session's STT adapter by name; one shared instance per process and name."""

from __future__ import annotations

from parley_common.contracts.session import SttProvider as SttName
from parley_common.providers import ProviderUnavailableError, test_providers_enabled
from parley_stt.providers.base import SttProvider

_instances: dict[SttName, SttProvider] = {}


def get_provider(name: SttName) -> SttProvider:
    """The adapter for ``name``; raises ProviderUnavailableError with the reason."""
    if name in _instances:
        return _instances[name]
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
        if not test_providers_enabled():
            raise ProviderUnavailableError("the scripted STT test double is disabled")
        from parley_stt.providers.scripted import ScriptedSttProvider

        provider = ScriptedSttProvider()
    else:
        raise ProviderUnavailableError(f"STT provider '{name.value}' is not available here")
    _instances[name] = provider
    return provider
