"""Configuration of the llm service (environment variables prefixed ``LLM_``, plus each cloud
provider's default model under the vendor's own prefix)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from parley_common.settings import ServiceSettings

# Defaults chosen for a voice conversation: fast to the first token, not a reasoning model.
DEFAULT_ANTHROPIC_MODEL = "claude-haiku-5-5"
DEFAULT_OPENAI_MODEL = "gpt-4.1-mini"
DEFAULT_GROQ_MODEL = "llama-3.3-70b-versatile"


def _env(name: str) -> AliasChoices:
    # These keep the vendor's prefix whatever the service's prefix is.
    return AliasChoices(name)


class LlmSettings(ServiceSettings):
    """``LLM_HTTP_PORT`` and the service's own options."""

    model_config = SettingsConfigDict(env_prefix="LLM_", env_file=".env", extra="ignore")

    anthropic_model: str = Field(
        default=DEFAULT_ANTHROPIC_MODEL, min_length=1, validation_alias=_env("ANTHROPIC_MODEL")
    )
    openai_model: str = Field(
        default=DEFAULT_OPENAI_MODEL, min_length=1, validation_alias=_env("OPENAI_LLM_MODEL")
    )
    groq_model: str = Field(
        default=DEFAULT_GROQ_MODEL, min_length=1, validation_alias=_env("GROQ_LLM_MODEL")
    )
    # Any server speaking OpenAI's chat protocol (Ollama, vLLM, llama.cpp server): where it
    # is (with /v1), the model name it serves, and a key only if it wants one.
    openai_compatible_base_url: str | None = Field(
        default=None, validation_alias=_env("OPENAI_COMPATIBLE_BASE_URL")
    )
    openai_compatible_model: str | None = Field(
        default=None, validation_alias=_env("OPENAI_COMPATIBLE_MODEL")
    )
    openai_compatible_api_key: SecretStr | None = Field(
        default=None, validation_alias=_env("OPENAI_COMPATIBLE_API_KEY")
    )
    # Longest wait for the cloud provider: to connect, then between two streamed events.
    cloud_timeout_s: float = Field(default=30.0, gt=0)
    # Retries the SDK makes on 408/409/429/5xx/connection errors, only before the first
    # token (a stream that started is never replayed); it honours retry-after.
    cloud_max_retries: int = Field(default=2, ge=0, le=10)
