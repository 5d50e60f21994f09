"""One browser's WebRTC connection to a session: answered from its offer, then served by the
session bridge (the same one a WebSocket gets) until the browser leaves or is replaced.

ICE is gathered in full before answering: aiortc's ``setLocalDescription`` returns once every
candidate is known, so the answer carries them all and no trickle round trips are needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack

from parley_common.contracts.webrtc import DATA_CHANNEL_ID, DATA_CHANNEL_LABEL, SdpAnswer, SdpOffer
from parley_common.errors import BadInputError
from parley_common.observability.logging import session_context
from parley_gateway.realtime.bridge import SessionBridge
from parley_gateway.realtime.connections import connected
from parley_gateway.realtime.webrtc.peer_socket import PeerSocket
from parley_gateway.realtime.webrtc.settings import GATEWAY_TURN_USER, WebRtcSettings
from parley_gateway.realtime.webrtc.tracks import PacedPcmTrack, microphone_frames
from parley_gateway.routes.deps import Gateway
from parley_gateway.sessions.store import SessionRecord

log = logging.getLogger(__name__)

OFFER_INVALID = "webrtc_offer_invalid"
_OPUS = "audio/opus"


def _server_ice(settings: WebRtcSettings) -> RTCConfiguration:
    # The gateway relays through the same servers when it sits behind a NAT itself.
    views = settings.ice_servers_for(GATEWAY_TURN_USER, time.time())
    return RTCConfiguration(
        iceServers=[RTCIceServer(v.urls, v.username, v.credential) for v in views]
    )


def _refused(reason: str) -> BadInputError:
    return BadInputError(f"The WebRTC offer cannot be answered: {reason}.", code=OFFER_INVALID)


class PeerCall:
    """A session's WebRTC call: ``answer`` the offer, then ``run`` until it ends."""

    def __init__(self, gateway: Gateway, record: SessionRecord, settings: WebRtcSettings) -> None:
        self.gateway = gateway
        self.record = record
        self.settings = settings
        self.pc = RTCPeerConnection(_server_ice(settings))
        self.speaker = PacedPcmTrack(record.config.output_sample_rate)
        self._microphone: MediaStreamTrack | None = None
        self._channel: RTCDataChannel | None = None
        self._open = asyncio.Event()  # the data channel is open
        self._gone = asyncio.Event()  # the browser left, or the gateway closed the call
        self._settled = asyncio.Event()  # either of the two
        self.socket: PeerSocket | None = None
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self._microphone is None:
            self._microphone = track

    def _on_state(self) -> None:
        if self.pc.connectionState in ("failed", "closed"):
            self._set_gone()
            if self.socket is not None:
                self.socket.disconnected()

    async def answer(self, offer: SdpOffer) -> SdpAnswer:
        """The answer to ``offer`` (every candidate gathered); a ``BadInputError`` when the
        offer has no audio or no data channel, or cannot be parsed. The connection is closed
        on failure."""
        try:
            return await self._negotiate(offer)
        except BadInputError:
            await self.close()
            raise
        except Exception as exc:  # aiortc's parser raises anything on a malformed SDP
            await self.close()
            raise _refused("it is not a valid audio and data channel offer") from exc

    async def _negotiate(self, offer: SdpOffer) -> SdpAnswer:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
        audio = [t for t in self.pc.getTransceivers() if t.kind == "audio"]
        if len(audio) != 1:
            raise _refused("it needs exactly one audio section")
        if self.pc.sctp is None:
            raise _refused("it has no data channel section")
        opus = [c for c in RTCRtpSender.getCapabilities("audio").codecs if c.mimeType == _OPUS]
        audio[0].setCodecPreferences(opus)
        self.pc.addTrack(self.speaker)
        channel = self.pc.createDataChannel(
            DATA_CHANNEL_LABEL, negotiated=True, id=DATA_CHANNEL_ID, ordered=True
        )
        channel.on("open", self._set_open)
        self._channel = channel
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        local = self.pc.localDescription
        if "opus/48000" not in local.sdp.lower():
            raise _refused("it offers no Opus audio")
        return SdpAnswer(sdp=local.sdp)

    async def run(self) -> None:
        """Wait for the data channel, serve the session over it, close the connection."""
        with session_context(self.record.id):
            try:
                await self._serve()
            finally:
                await self.close()

    async def _serve(self) -> None:
        channel = self._channel
        assert channel is not None, "answer() first"
        try:
            async with asyncio.timeout(self.settings.connect_timeout_s):
                await self._settled.wait()
        except TimeoutError:
            log.info("webrtc peer never connected")
            return
        if not self._open.is_set():
            log.info("webrtc peer left before its data channel opened")
            return
        path = f"/api/v1/sessions/{self.record.id}/webrtc"
        self.socket = PeerSocket(channel, self.speaker, self._closed_by_gateway, path)
        if self._gone.is_set():
            self.socket.disconnected()
        websocket = self.socket.websocket()
        await websocket.accept()
        log.info("webrtc peer connected")
        async with connected(self.gateway, self.record.id, websocket), asyncio.TaskGroup() as tg:
            feeding = tg.create_task(self._feed_microphone(self.socket))
            try:
                await SessionBridge(self.gateway, self.record, websocket).run()
            finally:
                feeding.cancel()

    async def _feed_microphone(self, socket: PeerSocket) -> None:
        if self._microphone is None:
            return  # a call without a microphone: typed messages only
        async for frame in microphone_frames(self._microphone):
            socket.audio(frame)

    def _set_open(self) -> None:
        self._open.set()
        self._settled.set()

    def _set_gone(self) -> None:
        self._gone.set()
        self._settled.set()

    def _closed_by_gateway(self) -> None:
        # Replaced (4409) or ended (4410): the bridge ends on the disconnect the socket
        # queued, and run() closes the peer connection after it.
        self._set_gone()

    async def close(self) -> None:
        """Close the peer connection (idempotent)."""
        self.speaker.stop()
        with contextlib.suppress(Exception):
            await self.pc.close()
