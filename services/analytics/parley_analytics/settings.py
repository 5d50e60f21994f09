"""Configuration of the analytics service (environment variables prefixed ``ANALYTICS_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, BeforeValidator, Field
from pydantic_settings import SettingsConfigDict

from parley_common.settings import ServiceSettings


def _blank_is_off(value: object) -> object:
    # ``PARLEY_STORE_AUDIO=`` (a copied .env.example line) means unset, not an error.
    return False if isinstance(value, str) and not value.strip() else value


def _blank_is_unset(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


class AnalyticsSettings(ServiceSettings):
    """``ANALYTICS_HTTP_PORT`` and the service's own options."""

    model_config = SettingsConfigDict(env_prefix="ANALYTICS_", env_file=".env", extra="ignore")

    # PARLEY_STORE_AUDIO=1: record each user utterance and assistant reply in voice_audio
    # (parley_analytics.audio_store). Off by default: no audio is stored anywhere.
    store_audio: Annotated[bool, BeforeValidator(_blank_is_off)] = Field(
        default=False, validation_alias=AliasChoices("PARLEY_STORE_AUDIO")
    )
    # A JSON or TOML price table replacing the defaults (parley_analytics.pricing); blank
    # means the defaults.
    prices_file: Annotated[Path | None, BeforeValidator(_blank_is_unset)] = Field(
        default=None, validation_alias=AliasChoices("PARLEY_PRICES_FILE")
    )
