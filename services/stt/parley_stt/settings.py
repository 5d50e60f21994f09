"""Configuration of the stt service (environment variables prefixed ``STT_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from parley_common.settings import ServiceSettings


class SttSettings(ServiceSettings):
    """``STT_HTTP_PORT`` and the service's own options."""

    model_config = SettingsConfigDict(env_prefix="STT_", env_file=".env", extra="ignore")
