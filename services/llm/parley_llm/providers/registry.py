"""Chooses a session's LLM adapter by name; one shared instance per process and name."""

from __future__ import annotations

import os

from parley_common.contracts.session import LlmProvider as LlmName
from parley_common.errors import ProviderUnavailableError
from parley_common.providers import ProviderRegistry, api_key, base_url
from parley_llm.providers.base import LlmProvider
from parley_llm.settings import LlmSettings

REGISTRY: ProviderRegistry[LlmProvider] = ProviderRegistry("LLM", LlmName)


@REGISTRY.register(LlmName.LOCAL)
def _local() -> LlmProvider:
    try:
        from parley_llm.providers.llama_local import LocalLlamaProvider
    except ImportError as exc:
        raise ProviderUnavailableError(
            "not installed: the local model needs pip install 'parley-llm[local]'"
        ) from exc
    try:
        return LocalLlamaProvider()
    except ValueError as exc:  # PARLEY_LOCAL_LLM names no profile
        raise ProviderUnavailableError(str(exc), provider=LlmName.LOCAL.value) from exc


@REGISTRY.register(LlmName.SCRIPTED)
def _scripted() -> LlmProvider:
    from parley_llm.providers.scripted import ScriptedLlmProvider

    delay = float(os.environ.get("PARLEY_SCRIPTED_LLM_DELAY_S", "0"))
    return ScriptedLlmProvider(delta_delay_s=delay)


@REGISTRY.register(LlmName.ANTHROPIC)
def _anthropic() -> LlmProvider:
    from parley_llm.providers.anthropic_messages import AnthropicProvider

    key = api_key("anthropic")
    settings = LlmSettings()
    return AnthropicProvider(
        api_key=key.get_secret_value(),
        base_url=base_url("anthropic"),
        model=settings.anthropic_model,
        timeout_s=settings.cloud_timeout_s,
        max_retries=settings.cloud_max_retries,
    )


@REGISTRY.register(LlmName.OPENAI)
def _openai() -> LlmProvider:
    from parley_llm.providers.openai_chat import OPENAI, OpenAIChatProvider

    key = api_key("openai")
    settings = LlmSettings()
    return OpenAIChatProvider(
        name=LlmName.OPENAI.value,
        vendor=OPENAI,
        api_key=key.get_secret_value(),
        base_url=base_url("openai"),
        model=settings.openai_model,
        timeout_s=settings.cloud_timeout_s,
        max_retries=settings.cloud_max_retries,
    )


@REGISTRY.register(LlmName.OPENAI_COMPATIBLE)
def _openai_compatible() -> LlmProvider:
    from parley_llm.providers.openai_chat import NO_KEY, OPENAI_COMPATIBLE, OpenAIChatProvider

    settings = LlmSettings()
    url = (settings.openai_compatible_base_url or "").strip()
    if not url:
        raise ProviderUnavailableError(
            "no server: set OPENAI_COMPATIBLE_BASE_URL (with /v1, e.g. http://127.0.0.1:11434/v1)",
            provider=LlmName.OPENAI_COMPATIBLE.value,
        )
    model = (settings.openai_compatible_model or "").strip()
    if not model:
        raise ProviderUnavailableError(
            "no model: set OPENAI_COMPATIBLE_MODEL to a model the server serves",
            provider=LlmName.OPENAI_COMPATIBLE.value,
        )
    key = settings.openai_compatible_api_key
    return OpenAIChatProvider(
        name=LlmName.OPENAI_COMPATIBLE.value,
        vendor=OPENAI_COMPATIBLE,
        api_key=(key.get_secret_value().strip() if key else "") or NO_KEY,
        base_url=url,
        model=model,
        timeout_s=settings.cloud_timeout_s,
        max_retries=settings.cloud_max_retries,
        compatible_server=True,
    )


@REGISTRY.register(LlmName.GROQ)
def _groq() -> LlmProvider:
    from parley_llm.providers.groq_chat import GroqChatProvider

    key = api_key("groq")
    settings = LlmSettings()
    return GroqChatProvider(
        api_key=key.get_secret_value(),
        base_url=base_url("groq"),
        model=settings.groq_model,
        timeout_s=settings.cloud_timeout_s,
        max_retries=settings.cloud_max_retries,
    )


def get_provider(name: LlmName) -> LlmProvider:
    """The adapter for ``name``; raises ProviderUnavailableError with the reason."""
    return REGISTRY.get(name)
