"""A WebRTC call seen as a WebSocket: the data channel and the two audio tracks behind the
ASGI ``receive``/``send`` of a Starlette ``WebSocket``.

So the session bridge, its barge-in and playout, the connection registry (a newer connection
replaces this one with 4409) and idle-ending (4410) serve a WebRTC call without knowing it:

- up: the data channel's JSON messages arrive as text, the microphone track's audio as the
  binary 20 ms PCM16 16 kHz frames a WebSocket client sends, in arrival order;
- down: text goes to the data channel, binary audio to the outgoing track (``PacedPcmTrack``),
  which the bridge's playout already writes at real-time pace. On ``interrupted`` the track's
  unread audio is dropped, which is what a WebSocket client does in its own player;
- a close becomes the data channel's ``close`` message with the WebSocket's code and reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable

from aiortc import RTCDataChannel
from aiortc.exceptions import InvalidStateError
from fastapi import WebSocket
from starlette.types import Message, Scope

from parley_common.contracts.webrtc import DataChannelClose
from parley_common.contracts.ws import CLOSE_GOING_AWAY, ErrorData, ErrorEvent
from parley_gateway.realtime.webrtc.tracks import PacedPcmTrack

log = logging.getLogger(__name__)

# Messages (audio frames mostly) received and not yet read by the bridge: 10 s of audio.
# A bridge that falls this far behind loses the oldest audio rather than all of memory.
MAX_QUEUED = 500
# Above this much unsent data channel data, a send waits for the browser to read: the
# bridge's send timeout then closes a browser that stopped reading, as on a WebSocket.
HIGH_WATER_BYTES = 1 << 20
BINARY_REFUSED = "binary_not_expected"


class PeerSocket:
    """The ASGI side of one WebRTC call's "WebSocket" (see the module docstring).
    ``on_close`` is called once, when the gateway closes the connection."""

    def __init__(
        self,
        channel: RTCDataChannel,
        speaker: PacedPcmTrack,
        on_close: Callable[[], None],
        path: str,
    ) -> None:
        self.channel = channel
        self.speaker = speaker
        self._on_close = on_close
        self._path = path
        self._incoming: asyncio.Queue[Message] = asyncio.Queue()
        self._connect_sent = False
        self._ended = False
        self.audio_dropped = 0
        channel.bufferedAmountLowThreshold = HIGH_WATER_BYTES // 2
        channel.on("message", self._on_message)
        channel.on("close", self.disconnected)

    def websocket(self) -> WebSocket:
        """The Starlette WebSocket over this call (accept it before use)."""
        scope: Scope = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "scheme": "wss",
            "path": self._path,
            "raw_path": self._path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [],
            "client": None,
            "server": None,
            "subprotocols": [],
        }
        return WebSocket(scope, self.receive, self.send)

    # -- browser -> bridge ------------------------------------------------------------------
    def audio(self, pcm: bytes) -> None:
        """A frame of the microphone track."""
        if self._ended:
            return
        if self._incoming.qsize() >= MAX_QUEUED:
            self.audio_dropped += 1
            if self.audio_dropped == 1:
                log.warning("the bridge is not keeping up with the microphone: audio dropped")
            return
        self._incoming.put_nowait({"type": "websocket.receive", "bytes": pcm})

    def disconnected(self) -> None:
        """The browser is gone (data channel closed, ICE failed): the bridge ends."""
        if not self._ended:
            self._ended = True
            self._incoming.put_nowait({"type": "websocket.disconnect", "code": CLOSE_GOING_AWAY})

    def _on_message(self, data: str | bytes) -> None:
        if self._ended:
            return
        if isinstance(data, str):
            self._incoming.put_nowait({"type": "websocket.receive", "text": data})
            return
        # Audio comes on the track; binary here would be a second, unpaced audio stream.
        refusal = ErrorData(
            code=BINARY_REFUSED,
            message="the data channel carries JSON text; audio goes on the audio track",
        )
        self._send_text(ErrorEvent(data=refusal).model_dump_json())

    async def receive(self) -> Message:
        """ASGI receive: ``websocket.connect`` first, then what the browser sent."""
        if not self._connect_sent:
            self._connect_sent = True
            return {"type": "websocket.connect"}
        return await self._incoming.get()

    # -- bridge -> browser ------------------------------------------------------------------
    async def send(self, message: Message) -> None:
        """ASGI send: events to the data channel, audio to the track, close as ``close``."""
        kind = message["type"]
        if kind == "websocket.send":
            if (data := message.get("bytes")) is not None:
                self.speaker.write(data)
            elif (text := message.get("text")) is not None:
                await self._drained()
                if _event_type(text) == "interrupted":
                    self.speaker.flush()
                self._send_text(text)
        elif kind == "websocket.close":
            code, reason = message.get("code", 1000), message.get("reason") or ""
            close = DataChannelClose(code=code, reason=reason)
            self._send_text(close.model_dump_json())
            self.disconnected()
            self._on_close()

    async def _drained(self) -> None:
        if self.channel.bufferedAmount <= HIGH_WATER_BYTES:
            return
        low = asyncio.Event()
        self.channel.once("bufferedamountlow", low.set)
        await low.wait()

    def _send_text(self, text: str) -> None:
        # Events that race the browser's departure are dropped: nobody is left to tell.
        with contextlib.suppress(InvalidStateError):
            self.channel.send(text)


def _event_type(text: str) -> str | None:
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed.get("type") if isinstance(parsed, dict) else None
