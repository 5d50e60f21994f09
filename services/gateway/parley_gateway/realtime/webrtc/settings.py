"""WebRTC configuration (environment variables prefixed ``WEBRTC_``), and the ICE servers it
gives each side: the browser (``GET /api/v1/webrtc``) and the gateway's own peer connections.

``WEBRTC_ICE_SERVERS`` is a JSON list in the browser's ``RTCIceServer`` shape::

    [{"urls": "stun:stun.example.org:3478"},
     {"urls": ["turn:turn.example.org:3478?transport=udp"], "username": "u", "credential": "p"}]

A TURN server listed without credentials gets short-lived ones minted from
``WEBRTC_TURN_SECRET`` (coturn's ``use-auth-secret``: user ``<expiry>:<user>``, password the
base64 HMAC-SHA1 of it), so no long-lived TURN password is ever handed to a browser.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from parley_common.contracts.webrtc import IceServerView

_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")
GATEWAY_TURN_USER = "parley-gateway"


def _as_list(value: object) -> object:
    return [value] if isinstance(value, str) else value


class IceServer(BaseModel):
    """One configured STUN or TURN server."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    urls: Annotated[list[str], BeforeValidator(_as_list)] = Field(min_length=1)
    username: str | None = None
    credential: SecretStr | None = None

    @field_validator("urls")
    @classmethod
    def _known_schemes(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not url.startswith(_SCHEMES):
                raise ValueError(f"not a stun:, stuns:, turn: or turns: URL: {url!r}")
        return urls

    @property
    def is_turn(self) -> bool:
        """Whether it relays (TURN), so that it needs credentials."""
        return any(url.startswith(("turn:", "turns:")) for url in self.urls)


class WebRtcSettings(BaseSettings):
    """``WEBRTC_ENABLED``, ``WEBRTC_ICE_SERVERS``, ``WEBRTC_TURN_SECRET``, ..."""

    model_config = SettingsConfigDict(env_prefix="WEBRTC_", env_file=".env", extra="ignore")

    # Off: the routes answer 404 and clients use the WebSocket.
    enabled: bool = True
    ice_servers: list[IceServer] = Field(default_factory=list)
    # coturn's static-auth-secret: TURN servers listed without credentials get minted ones.
    turn_secret: SecretStr | None = None
    turn_ttl_s: int = Field(default=86_400, ge=60)
    # Peer connections one gateway serves at once (each holds UDP sockets, an Opus encoder
    # and decoder); one more is a 503.
    max_peers: int = Field(default=100, ge=1)
    # From the answer to an open data channel (ICE, DTLS, SCTP); a browser that never gets
    # there is let go.
    connect_timeout_s: float = Field(default=20.0, gt=0)

    @field_validator("turn_secret", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # .env.example's "WEBRTC_TURN_SECRET=" means no secret, not an empty one to sign with.
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        return None if isinstance(raw, str) and not raw.strip() else value

    def ice_servers_for(self, user: str, now: float) -> list[IceServerView]:
        """The ICE servers as ``user`` gets them at ``now`` (Unix time): configured
        credentials as they are, TURN servers without any with minted ones."""
        return [self._view(server, user, now) for server in self.ice_servers]

    def _view(self, server: IceServer, user: str, now: float) -> IceServerView:
        if server.credential is not None or not server.is_turn or self.turn_secret is None:
            credential = server.credential.get_secret_value() if server.credential else None
            return IceServerView(urls=server.urls, username=server.username, credential=credential)
        username = f"{int(now) + self.turn_ttl_s}:{user}"
        return IceServerView(
            urls=server.urls,
            username=username,
            credential=turn_password(self.turn_secret.get_secret_value(), username),
        )


def turn_password(secret: str, username: str) -> str:
    """The TURN REST API password of ``username``: base64(HMAC-SHA1(secret, username))."""
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()
