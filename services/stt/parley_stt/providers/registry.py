"""Chooses a session's STT adapter by name; one shared instance per process and name."""

from __future__ import annotations

from parley_common.contracts.session import SttProvider as SttName
from parley_common.errors import ProviderUnavailableError
from parley_common.providers import ProviderRegistry
from parley_stt.providers.base import SttProvider

REGISTRY: ProviderRegistry[SttProvider] = ProviderRegistry("STT", SttName)


@REGISTRY.register(SttName.LOCAL)
def _local() -> SttProvider:
    try:
        from parley_stt.providers.local_whisper import LocalWhisperProvider
    except ImportError as exc:  # the [local] extra is not installed
        raise ProviderUnavailableError(
            "not installed: local STT needs pip install 'parley-stt[local]'"
        ) from exc
    return LocalWhisperProvider()


@REGISTRY.register(SttName.SCRIPTED)
def _scripted() -> SttProvider:
    from parley_stt.providers.scripted import ScriptedSttProvider

    return ScriptedSttProvider()


def get_provider(name: SttName) -> SttProvider:
    """The adapter for ``name``; raises ProviderUnavailableError with the reason."""
    return REGISTRY.get(name)
