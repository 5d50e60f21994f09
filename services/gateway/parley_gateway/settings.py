"""Gateway configuration (environment variables prefixed ``GATEWAY_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from parley_common.settings import ServiceSettings
from parley_gateway.limits.rules import (
    DEFAULT_IP_RULES,
    DEFAULT_USER_RULES,
    CheckTimeout,
    IpRateRules,
    UserRateRules,
)
from parley_gateway.telephony.settings import TelephonySettings
from parley_gateway.transport import CorsOrigins


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
    # Bind the port with SO_REUSEPORT, so that several gateway processes serve it.
    reuse_port: bool = False
    # Active sessions one authenticated user may hold at once (a new one beyond is a 429).
    max_sessions_per_user: int = Field(default=10, ge=1)
    # Audio is sent to the client at most this far ahead of real time, so that audio the
    # user has not heard yet can still be dropped on an interruption.
    audio_lead_ms: int = 250
    # Audio goes to native WebSocket clients in chunks this long: the JS client's jitter
    # buffer (clients/js/audio.js, 80 ms) holds one before it plays, so smaller chunks only
    # cost more sends per second (each through ASGI, websockets and the event loop).
    audio_chunk_ms: int = Field(default=80, ge=20, le=200)
    # Speech over the assistant pauses its audio and is judged (barge_in "pause"), mostly on
    # the words the STT heard when it stopped (realtime/overlap.py). When no transcript of
    # it comes at all, speech shorter than this window is noise and longer is talk.
    # 600: Piper's slower "mm-hm" lasts ~550 ms of voice (bench/barge_in.py).
    barge_in_window_ms: int = Field(default=600, ge=300, le=600)
    # How long a stopped overlap waits for its transcript before the window decides.
    barge_in_transcript_wait_ms: int = Field(default=1000, ge=100, le=3000)
    # Largest WebSocket message accepted from a client (a binary audio frame or a JSON text).
    max_ws_message_bytes: int = 64 * 1024
    # Largest message on S2's voice socket, where a binary message is a whole recording of up
    # to 30 s (MediaRecorder's WebM/Opus is 16-128 kbit/s; a WAV of 30 s is under 1 MB).
    max_ws_recording_bytes: int = 8 * 1024 * 1024
    # Where the JS client library the call page loads is served from; None = the copy
    # installed with parley-web (clients/js in a checkout).
    client_lib_dir: Path | None = None
    # A session without audio or a message from its client for this long is ended; every
    # replica reaps the idle sessions of the database. 0 = sessions never idle out.
    idle_timeout_s: float = Field(default=300.0, ge=0)
    # Origins whose pages may call the API (comma-separated); empty = no other origin.
    cors_origins: CorsOrigins = ()
    # A PEM certificate chain and its key, both or neither: the gateway then serves https://
    # and wss:// itself (checked at start-up by parley_gateway.transport.tls_options).
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Rate limits (parley_gateway.limits), counted in a NATS KV bucket every replica shares:
    # "kind=N/window,..." per user (the token's sub) and per client IP; kinds left out keep
    # their default, "kind=off" lifts one. A check waits at most timeout_s for the bucket,
    # then lets the request through.
    rate_limits_enabled: bool = True
    rate_limits_user: UserRateRules = DEFAULT_USER_RULES
    rate_limits_ip: IpRateRules = DEFAULT_IP_RULES
    rate_limits_timeout_s: CheckTimeout = 0.5
    # Phone calls (parley_gateway.telephony): their own variables, PARLEY_PUBLIC_URL,
    # TWILIO_AUTH_TOKEN, TELNYX_PUBLIC_KEY and PARLEY_TELEPHONY_*.
    telephony: TelephonySettings = Field(default_factory=TelephonySettings)
