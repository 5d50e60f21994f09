"""Chooses a session's LLM adapter by name; one shared instance per process and name."""

from __future__ import annotations

import os

from parley_common.contracts.session import LlmProvider as LlmName
from parley_common.errors import ProviderUnavailableError
from parley_common.providers import ProviderRegistry
from parley_llm.providers.base import LlmProvider

REGISTRY: ProviderRegistry[LlmProvider] = ProviderRegistry("LLM", LlmName)


@REGISTRY.register(LlmName.LOCAL)
def _local() -> LlmProvider:
    try:
        from parley_llm.providers.llama_local import LocalLlamaProvider
    except ImportError as exc:
        raise ProviderUnavailableError(
            "not installed: the local model needs pip install 'parley-llm[local]'"
        ) from exc
    return LocalLlamaProvider()


@REGISTRY.register(LlmName.SCRIPTED)
def _scripted() -> LlmProvider:
    from parley_llm.providers.scripted import ScriptedLlmProvider

    delay = float(os.environ.get("PARLEY_SCRIPTED_LLM_DELAY_S", "0"))
    return ScriptedLlmProvider(delta_delay_s=delay)


def get_provider(name: LlmName) -> LlmProvider:
    """The adapter for ``name``; raises ProviderUnavailableError with the reason."""
    return REGISTRY.get(name)
