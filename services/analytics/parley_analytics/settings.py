"""Configuration of the analytics service (environment variables prefixed ``ANALYTICS_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from parley_common.settings import ServiceSettings


class AnalyticsSettings(ServiceSettings):
    """``ANALYTICS_HTTP_PORT`` and the service's own options."""

    model_config = SettingsConfigDict(env_prefix="ANALYTICS_", env_file=".env", extra="ignore")
