"""Configuration of the llm service (environment variables prefixed ``LLM_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from parley_common.settings import ServiceSettings


class LlmSettings(ServiceSettings):
    """``LLM_HTTP_PORT`` and the service's own options."""

    model_config = SettingsConfigDict(env_prefix="LLM_", env_file=".env", extra="ignore")
