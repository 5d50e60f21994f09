"""Configuration of the clone service (environment variables prefixed ``CLONE_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from parley_common.settings import ServiceSettings


class CloneSettings(ServiceSettings):
    """``CLONE_HTTP_PORT`` and the service's own options."""

    model_config = SettingsConfigDict(env_prefix="CLONE_", env_file=".env", extra="ignore")

    # How long a clone request waits for its provider before it answers ``processing`` (the
    # voice then turns ``ready`` or ``failed`` on its own; ElevenLabs' instant clones take
    # about a second).
    ready_wait_s: float = Field(default=5.0, ge=0.0)
    # How long one provider call (upload and clone, or delete) may take.
    provider_timeout_s: float = Field(default=120.0, gt=0.0)
    # Keep the converted samples of each voice in ``custom_voice_samples`` (off: nothing of
    # the upload outlives the clone request).
    keep_samples: bool = False
    # A voice still ``processing`` this long after its last change was left by a worker that
    # stopped mid-clone: it is marked failed.
    stale_after_s: float = Field(default=900.0, gt=0.0)
    sweep_every_s: float = Field(default=60.0, gt=0.0)
