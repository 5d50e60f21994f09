"""Configuration of the analytics service (environment variables prefixed ``ANALYTICS_``)."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from parley_common.settings import ServiceSettings


class AnalyticsSettings(ServiceSettings):
    """``ANALYTICS_HTTP_PORT`` and the service's own options."""

    model_config = SettingsConfigDict(env_prefix="ANALYTICS_", env_file=".env", extra="ignore")

    # PARLEY_STORE_AUDIO=1: record each user utterance and assistant reply in voice_audio
    # (parley_analytics.audio_store). Off by default: no audio is stored anywhere.
    store_audio: bool = Field(default=False, validation_alias=AliasChoices("PARLEY_STORE_AUDIO"))
