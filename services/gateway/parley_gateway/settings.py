"""Gateway configuration (environment variables prefixed ``GATEWAY_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import SettingsConfigDict

from parley_common.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    """``GATEWAY_HTTP_HOST``, ``GATEWAY_HTTP_PORT``, ``GATEWAY_MAX_BODY_BYTES``, ..."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", env_file=".env", extra="ignore")

    http_host: str = "127.0.0.1"
    http_port: int = 8000
    # Larger bodies are refused with 413 before they are read in full (uploads of audio
    # samples are the largest legitimate bodies).
    max_body_bytes: int = 25 * 1024 * 1024
    # How long to wait for each service's queue group to take a new session.
    assign_timeout_s: float = 2.0
    # Audio is sent to the client at most this far ahead of real time, so that audio the
    # user has not heard yet can still be dropped on an interruption.
    audio_lead_ms: int = 250
    # Largest WebSocket message accepted from a client (a binary audio frame or a JSON text).
    max_ws_message_bytes: int = 64 * 1024
    # Where the JS client library the call page loads is served from; None = the copy
    # installed with parley-web (clients/js in a checkout).
    client_lib_dir: Path | None = None
