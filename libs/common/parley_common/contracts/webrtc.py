"""WebRTC signalling: ``GET /api/v1/webrtc`` (what a browser needs before its offer) and
``POST /api/v1/sessions/{id}/webrtc`` (the offer in, the answer out).

A WebRTC call carries the session's audio as Opus on one audio track each way, and the
WebSocket protocol's JSON messages (``ws.py``), unchanged, on one data channel. That channel
is negotiated out of band (``negotiated: true`` with the ``id`` below), so neither side waits
for the other to announce it. The only message the data channel adds is ``close``: the
WebSocket's close frame, with the same codes (4409 replaced, 4410 ended, ...).

ICE is gathered in full on both sides before the description is sent (no trickle): the offer
and the answer each carry every candidate.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DATA_CHANNEL_LABEL = "parley"
DATA_CHANNEL_ID = 0
# An SDP offer of one audio section and one data section is 2-6 kB; far more is not a browser.
MAX_SDP_CHARS = 32_000


class IceServerView(BaseModel):
    """One STUN or TURN server, in the shape of the browser's ``RTCIceServer``."""

    model_config = ConfigDict(frozen=True)

    urls: list[str]
    username: str | None = None
    credential: str | None = None


class DataChannelView(BaseModel):
    """How the client creates the data channel: ``createDataChannel(label, {negotiated:
    true, id, ordered: true})``."""

    model_config = ConfigDict(frozen=True)

    label: str = DATA_CHANNEL_LABEL
    id: int = DATA_CHANNEL_ID
    negotiated: Literal[True] = True
    ordered: Literal[True] = True


class WebRtcConfigView(BaseModel):
    """What ``GET /api/v1/webrtc`` returns: the ICE servers for the browser's
    ``RTCPeerConnection`` (TURN credentials minted for the caller when a shared secret is
    configured) and the data channel's parameters."""

    ice_servers: list[IceServerView]
    ice_gathering: Literal["complete"] = "complete"
    data_channel: DataChannelView = DataChannelView()


class SdpOffer(BaseModel):
    """The browser's offer (``RTCSessionDescription``), with every ICE candidate in it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["offer"]
    sdp: str = Field(min_length=1, max_length=MAX_SDP_CHARS)


class SdpAnswer(BaseModel):
    """The gateway's answer, with every ICE candidate in it."""

    model_config = ConfigDict(frozen=True)

    type: Literal["answer"] = "answer"
    sdp: str


class DataChannelClose(BaseModel):
    """The data channel's last message: the connection is over, for the reason a WebSocket
    close frame would give (its code and reason)."""

    model_config = ConfigDict(frozen=True)

    type: Literal["close"] = "close"
    code: int
    reason: str = ""
