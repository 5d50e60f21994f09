"""Phone calls' configuration: where Parley is reachable, the providers' signing keys, who
owns the calls' sessions and how their audio is handled."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from parley_gateway.telephony.signatures import telnyx_public_key

TelnyxCodec = Literal["PCMU", "PCMA"]


def _env(name: str) -> AliasChoices:
    # The providers' own variable names (and PARLEY_PUBLIC_URL), whatever the prefix.
    return AliasChoices(name)


class TelephonySettings(BaseSettings):
    """``PARLEY_PUBLIC_URL``, ``TWILIO_AUTH_TOKEN``, ``TELNYX_PUBLIC_KEY`` and
    ``PARLEY_TELEPHONY_*``. A provider whose key is unset has no routes (404)."""

    model_config = SettingsConfigDict(
        env_prefix="PARLEY_TELEPHONY_", env_file=".env", extra="ignore", populate_by_name=True
    )

    # The base URL the providers call (https://voice.example.com): webhook signatures cover
    # the URL as the provider sent it, and the stream URL handed to the provider is built
    # on it. Unset: the URL of each request as this gateway received it (local testing).
    public_url: str | None = Field(default=None, validation_alias=_env("PARLEY_PUBLIC_URL"))
    # Twilio signs its webhooks with the account's Auth Token (X-Twilio-Signature).
    twilio_auth_token: SecretStr | None = Field(
        default=None, validation_alias=_env("TWILIO_AUTH_TOKEN")
    )
    # Telnyx signs its webhooks with Ed25519; its public key (base64, from the portal).
    telnyx_public_key: str | None = Field(default=None, validation_alias=_env("TELNYX_PUBLIC_KEY"))
    # What Telnyx is asked to stream both ways (G.711 μ-law or A-law).
    telnyx_codec: TelnyxCodec = "PCMU"
    # The Parley user whose sessions phone calls are: its chatbots, its transcripts and its
    # cap on concurrent sessions (GATEWAY_MAX_SESSIONS_PER_USER).
    user: str = Field(default="telephony", min_length=1, max_length=200)
    # Signs the short-lived tokens the voice webhooks put in the stream they answer with;
    # replicas must share it. Unset: derived from PARLEY_JWT_SECRET, or else a random key
    # of this process (one gateway only).
    secret: SecretStr | None = None
    stream_token_ttl_s: float = Field(default=60.0, gt=0, le=600)
    # How far ahead of what the phone has played (by the provider's marks) audio is sent.
    # A `clear` drops all of it at once on a barge-in, so this only needs to cover the
    # network's round trip.
    audio_lead_ms: int = Field(default=500, ge=100, le=5000)
    # Echo suppression (not cancellation): while the caller's phone plays the assistant,
    # caller audio quieter than what was played minus this margin is taken for its echo
    # and silenced before the STT hears it. False hands every frame to the STT.
    echo_suppression: bool = True
    echo_margin_db: float = Field(default=6.0, ge=0, le=40)

    @field_validator("public_url", "telnyx_public_key", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("telnyx_public_key")
    @classmethod
    def _ed25519_key(cls, value: str | None) -> str | None:
        if value is not None:
            telnyx_public_key(value)  # its ValueError says what is wrong
        return value

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("PARLEY_PUBLIC_URL must start with https:// (or http://)")
        return value.rstrip("/") if value else value
