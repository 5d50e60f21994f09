"""A WebRTC caller: one session over aiortc, connected the way the browser client connects
(``GET /api/v1/webrtc``, an offer with every candidate, Opus both ways, the WebSocket's JSON
on the negotiated data channel), logging every event and each frame of audible assistant
audio with its arrival time, like ``bench.call.Call`` does for the WebSocket. Used by the
gateway's WebRTC tests and ``bench/webrtc_cpu.py``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

from bench.audio import INPUT_RATE
from bench.call import CallLog, Received
from parley_common.contracts.webrtc import DataChannelClose
from parley_gateway.realtime.webrtc.tracks import PacedPcmTrack

# Decoded assistant audio quieter than this peak (of 32767) is the silence between turns.
AUDIBLE_PEAK = 200
# What differs between two runs of the same turn: ids, timings, measured latencies.
_VOLATILE_EVENTS = ("metrics", "pong")
_VOLATILE_FIELDS = ("session_id", "at_ms", "timestamp")


def comparable_events(events: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """A call's server events by type, each type's in the order received, without what
    differs between two runs of the same turn (the session id, timings, latencies, how often
    a partial transcript was polled): equal for the same turn over WebRTC and the WebSocket.
    Across types the order is not fixed (answer text and answer audio stream side by side)."""
    out: dict[str, list[Any]] = {}
    for event in events:
        kind = event["type"]
        if kind in _VOLATILE_EVENTS:
            continue
        data = dict(event.get("data") or {k: v for k, v in event.items() if k != "type"})
        for volatile in _VOLATILE_FIELDS:
            data.pop(volatile, None)
        seen = out.setdefault(kind, [])
        if not (data.get("partial") and seen and seen[-1] == data):
            seen.append(data)
    return out


@dataclass
class HeardAudio:
    """One decoded 20 ms frame of the assistant's track."""

    at: float
    peak: int
    rms: float


@dataclass(kw_only=True)
class WebRtcCall(CallLog):
    """A live session over WebRTC: speak into its microphone track, send JSON on its data
    channel, wait for events; every decoded frame of the assistant's track is in ``heard``
    and the audible ones are logged as audio too (of the turn of the last ``audio_start``)."""

    session_id: str
    pc: RTCPeerConnection
    channel: RTCDataChannel
    microphone: PacedPcmTrack
    heard: list[HeardAudio] = field(default_factory=list)
    closed: DataChannelClose | None = None
    _closed_message: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _audio_turn: int | None = None

    @classmethod
    async def start(
        cls,
        base_url: str,
        *,
        token: str | None = None,
        session_id: str | None = None,
        **config: Any,
    ) -> WebRtcCall:
        """Create a session (or join ``session_id``) and connect it over WebRTC."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx.AsyncClient(base_url=base_url, timeout=30, headers=headers) as http:
            if session_id is None:
                created = await http.post("/api/v1/sessions", json=config)
                created.raise_for_status()
                session_id = created.json()["id"]
            setup = (await http.get("/api/v1/webrtc")).raise_for_status().json()
            servers = [RTCIceServer(**s) for s in setup["ice_servers"]]
            pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
            spec = setup["data_channel"]
            channel = pc.createDataChannel(
                spec["label"], negotiated=True, id=spec["id"], ordered=True
            )
            call = cls(
                session_id=session_id,
                pc=pc,
                channel=channel,
                microphone=PacedPcmTrack(INPUT_RATE),
            )
            channel.on("message", call._on_message)
            pc.on("track", call._on_track)
            pc.addTrack(call.microphone)
            await pc.setLocalDescription(await pc.createOffer())
            answered = await http.post(
                f"/api/v1/sessions/{session_id}/webrtc",
                json={"type": "offer", "sdp": pc.localDescription.sdp},
            )
            answered.raise_for_status()
        await pc.setRemoteDescription(RTCSessionDescription(**answered.json()))
        await call.wait_for("ready")
        return call

    def _on_message(self, message: str | bytes) -> None:
        now = time.perf_counter()
        event = json.loads(message)
        if event.get("type") == "close":
            self.closed = DataChannelClose.model_validate(event)
            self._closed_message.set()
            return
        if event.get("type") == "audio_start":
            self._audio_turn = event["data"]["turn_id"]
        self.record(Received(now, event=event))

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._tasks.append(asyncio.create_task(self._listen(track)))

    async def _listen(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            assert isinstance(frame, AudioFrame)
            samples = frame.to_ndarray().astype(np.float64).ravel()
            now = time.perf_counter()
            peak = int(np.abs(samples).max()) if samples.size else 0
            rms = float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0
            self.heard.append(HeardAudio(now, peak, rms))
            if peak >= AUDIBLE_PEAK:
                pcm = frame.to_ndarray().tobytes()
                self.record(Received(now, audio=pcm, turn_id=self._audio_turn))

    async def send_json(self, message: dict[str, Any]) -> None:
        """Send a control message on the data channel."""
        self.channel.send(json.dumps(message))

    async def say(self, pcm: bytes) -> float:
        """Speak ``pcm`` (PCM16 16 kHz) into the microphone track, in real time; returns the
        ``perf_counter`` time at which its last frame was read by the encoder."""
        self.microphone.write(pcm)
        # The encoder reads the track at real-time pace: it is through after what is queued.
        await asyncio.sleep(self.microphone.buffered_ms / 1000)
        return time.perf_counter()

    def audible_after(self, at: float) -> list[HeardAudio]:
        """Decoded frames louder than the silence between turns, received after ``at``."""
        return [h for h in self.heard if h.at > at and h.peak >= AUDIBLE_PEAK]

    async def wait_closed(self, within_s: float = 10.0) -> DataChannelClose:
        """The data channel's ``close`` message, once it comes."""
        async with asyncio.timeout(within_s):
            await self._closed_message.wait()
        assert self.closed is not None
        return self.closed

    async def close(self) -> None:
        """Hang up."""
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await self.pc.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)
