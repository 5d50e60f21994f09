"""Chooses a session's dialogue model by name; one shared instance per process and name."""

from __future__ import annotations

import os

from parley_common.contracts.session import LlmProvider as LlmName
from parley_common.providers import ProviderUnavailableError, test_providers_enabled
from parley_llm.providers.base import LlmProvider

_instances: dict[LlmName, LlmProvider] = {}


def get_provider(name: LlmName) -> LlmProvider:
    """The adapter for ``name``; raises ProviderUnavailableError with the reason."""
    if name in _instances:
        return _instances[name]
    provider: LlmProvider
    if name is LlmName.LOCAL:
        try:
            from parley_llm.providers.llama_local import LocalLlamaProvider
        except ImportError as exc:
            raise ProviderUnavailableError(
                "the local model needs llama.cpp: pip install 'parley-llm[local]'"
            ) from exc
        provider = LocalLlamaProvider()
    elif name is LlmName.SCRIPTED:
        if not test_providers_enabled():
            raise ProviderUnavailableError("the scripted LLM test double is disabled")
        from parley_llm.providers.scripted import ScriptedLlmProvider

        delay = float(os.environ.get("PARLEY_SCRIPTED_LLM_DELAY_S", "0"))
        provider = ScriptedLlmProvider(delta_delay_s=delay)
    else:
        raise ProviderUnavailableError(f"LLM provider '{name.value}' is not available here")
    _instances[name] = provider
    return provider
