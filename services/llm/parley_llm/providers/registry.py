"""Chooses a session's dialogue model by name; one shared instance per process and name."""

from __future__ import annotations

import functools
import os

from parley_common.contracts.session import LlmProvider as LlmName
from parley_common.providers import ProviderUnavailableError, require_test_providers
from parley_llm.providers.base import LlmProvider


# Cached: one instance per process and name, so a model loads once. Errors are not cached,
# so a provider that becomes available (a key set, an extra installed) is picked up.
@functools.cache
def get_provider(name: LlmName) -> LlmProvider:
    """The adapter for ``name``; raises ProviderUnavailableError with the reason."""
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
        require_test_providers("LLM")
        from parley_llm.providers.scripted import ScriptedLlmProvider

        delay = float(os.environ.get("PARLEY_SCRIPTED_LLM_DELAY_S", "0"))
        provider = ScriptedLlmProvider(delta_delay_s=delay)
    else:
        raise ProviderUnavailableError(f"LLM provider '{name.value}' is not available here")
    return provider
