"""Settings from environment variables. Each service subclasses ``ServiceSettings`` once."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/parley"


def _env(name: str) -> AliasChoices:
    # Shared variables keep their plain name whatever the service's prefix is.
    return AliasChoices(name)


class ServiceSettings(BaseSettings):
    """What every service reads: where the bus and the database are, how to log, where to
    serve ``/health`` and ``/metrics``. Subclasses set ``env_prefix`` for their own fields."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    nats_url: str = Field(default=DEFAULT_NATS_URL, validation_alias=_env("NATS_URL"))
    database_url: SecretStr = Field(
        default=SecretStr(DEFAULT_DATABASE_URL), validation_alias=_env("DATABASE_URL")
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", validation_alias=_env("LOG_LEVEL")
    )
    http_host: str = "127.0.0.1"
    http_port: int = 0
    worker_id: str = ""
    # On SIGTERM, how long a worker may finish its sessions' current turns before it stops
    # (keep it under the orchestrator's grace period: Kubernetes' default is 30 s).
    drain_s: float = Field(default=15.0, ge=0.0, validation_alias=_env("PARLEY_DRAIN_S"))


def positive_int_env(name: str, default: int) -> int:
    """A positive whole number from environment variable ``name`` (``default`` when unset or
    blank); anything else is a configuration error that names the variable."""
    raw = os.environ.get(name, "")
    if not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a positive whole number, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be a positive whole number, got {raw!r}")
    return value
