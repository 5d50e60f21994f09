"""Configuration of the clone service (environment variables prefixed ``CLONE_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from parley_common.settings import ServiceSettings


class CloneSettings(ServiceSettings):
    """``CLONE_HTTP_PORT`` and the service's own options."""

    model_config = SettingsConfigDict(env_prefix="CLONE_", env_file=".env", extra="ignore")
