"""The user's audio into a session: what the gateway publishes on ``audio.in``, and the two
ways a client sends it over a WebSocket.

Native clients stream PCM16 frames and mark push-to-talk with ``audio_start``/``audio_stop``
(``PcmInput``). S2's clients send each utterance as one compressed recording (a MediaRecorder
blob) and send ``audio_stop`` *before* the blob is on its way (``RecordingInput``). Either
way the session's own STT hears it, through ``AudioInPublisher``, which the REST voice chat
uses too.
"""

from __future__ import annotations

import asyncio
import sys
import time
from array import array
from typing import Protocol

from parley_common.audio import DecodeLimits, decode_upload_async
from parley_common.bus import Bus, MessageMeta
from parley_common.bus.audio import INPUT_SAMPLE_RATE, AudioInMeta, PushToTalk
from parley_common.contracts import subjects
from parley_common.contracts.subjects import SessionChannel
from parley_common.errors import BadInputError
from parley_gateway.realtime.audio_clock import AudioClock
from parley_gateway.realtime.client import ClientConnection
from parley_gateway.realtime.echo import ServerEcho

# The STT ends a turn after 30 s of speech (parley_stt.session.MAX_TURN_MS) and starts
# another: a longer recording would be answered twice, so it is refused instead.
MAX_UTTERANCE_S = 30
# A recording is published in messages of one second: well under NATS' 1 MB payload.
_CHUNK_BYTES = INPUT_SAMPLE_RATE * 2
# Samples never above this (about -54 dBFS) are silence: nothing to transcribe.
_SILENT_PEAK = 64
# How long after ``audio_stop`` the recording may take to arrive (S2's client sends the
# blob once MediaRecorder has finished it).
RECORDING_WAIT_S = 10.0
# Recordings received and not yet published; more means the client floods the session.
MAX_QUEUED_RECORDINGS = 4

RECORDING_MISSING = "recording_missing"
RECORDING_SILENT = "audio_silent"
RECORDINGS_QUEUED = "too_many_recordings"
MESSAGE_TOO_LARGE = "message_too_large"


def utterance_limits() -> DecodeLimits:
    """The upload limits of one spoken turn: the configured ones, at most MAX_UTTERANCE_S."""
    limits = DecodeLimits.from_env()
    return DecodeLimits(limits.max_bytes, min(limits.max_duration_s, MAX_UTTERANCE_S))


def check_audible(pcm: bytes) -> None:
    """Refuse a recording of silence (``audio_silent``): no STT would hear a turn in it,
    so nobody would ever answer."""
    samples = array("h", pcm[: len(pcm) - len(pcm) % 2])
    if sys.byteorder == "big":
        samples.byteswap()
    if not samples or max(max(samples), -min(samples)) < _SILENT_PEAK:
        raise BadInputError("The recording holds only silence.", code=RECORDING_SILENT)


async def decode_utterance(
    data: bytes, *, filename: str | None = None, content_type: str | None = None
) -> bytes:
    """An uploaded recording of one utterance as PCM16 16 kHz; a ``BadInputError`` when it
    is not audio (or not the audio its name or type says), too long for one turn or silent."""
    decoded = await decode_upload_async(
        data, utterance_limits(), filename=filename, content_type=content_type
    )
    check_audible(decoded.pcm)
    return decoded.pcm


class AudioInPublisher:
    """Publishes one session's input audio on ``audio.in``, every message dated on the
    session's input-audio clock (``AudioClock``)."""

    def __init__(self, bus: Bus, session_id: str, clock: AudioClock) -> None:
        self.bus = bus
        self.sid = session_id
        self.clock = clock
        self._subject = subjects.session(session_id, SessionChannel.AUDIO_IN)
        self._seq = 0

    async def frames(self, data: bytes) -> None:
        """PCM16 16 kHz audio, as it arrives."""
        await self._publish(data, AudioInMeta(self.clock.received(len(data))))

    async def marker(self, action: PushToTalk) -> None:
        """A push-to-talk press or release, in the stream itself so that it stays in order
        with the frames."""
        await self._publish(b"", AudioInMeta(self.clock.sample, action))

    async def recording(self, pcm: bytes) -> None:
        """A whole utterance (PCM16 16 kHz) as one push-to-talk turn: the STT ends the turn
        at its last sample, without waiting for silence."""
        await self.marker("start")
        for start in range(0, len(pcm), _CHUNK_BYTES):
            await self.frames(pcm[start : start + _CHUNK_BYTES])
        await self.marker("stop")

    async def _publish(self, data: bytes, audio: AudioInMeta) -> None:
        self._seq += 1
        meta = MessageMeta(session_id=self.sid, seq=self._seq, extra=audio.headers())
        await self.bus.publish(self._subject, data, meta)


class AudioInput(Protocol):
    """How a connection's binary messages and push-to-talk messages become session audio."""

    async def audio(self, data: bytes) -> None:
        """A binary message from the client."""

    async def push_to_talk(self, action: PushToTalk) -> None:
        """``audio_start`` or ``audio_stop`` from the client."""

    async def run(self) -> None:
        """Background work of the input, until cancelled (or returning if there is none)."""


class PcmInput:
    """Native clients: binary messages are PCM16 frames, published as they arrive (through
    ``echo``, the server's echo canceller, when the gateway cancels this client's echo)."""

    def __init__(
        self,
        publisher: AudioInPublisher,
        client: ClientConnection,
        max_bytes: int,
        echo: ServerEcho | None = None,
    ):
        self.publisher = publisher
        self.client = client
        self.max_bytes = max_bytes
        self.echo = echo

    async def audio(self, data: bytes) -> None:
        """Publish a frame; one over ``max_bytes`` is refused (the call goes on)."""
        if len(data) > self.max_bytes:
            await self.client.error(
                MESSAGE_TOO_LARGE,
                f"audio frames are at most {self.max_bytes} bytes; send 20 ms (640 bytes)",
            )
            return
        if self.echo is not None:
            data = await self.echo.cancel(data)
            if not data:
                return  # under one 10 ms block so far: it goes with the next frame
        await self.publisher.frames(data)

    async def push_to_talk(self, action: PushToTalk) -> None:
        """Relay the marker into the audio stream."""
        await self.publisher.marker(action)

    async def run(self) -> None:
        """Nothing runs in the background: frames are published as they arrive."""


class RecordingInput:
    """S2's clients: every binary message is a whole recording (WebM/Opus from
    MediaRecorder, or WAV, Ogg, MP3...), one user turn each, decoded and published in the
    order received. ``audio_stop`` comes before its recording: when none follows within
    ``wait_s``, the client is told. A recording without a pending stop is a turn too."""

    def __init__(
        self,
        publisher: AudioInPublisher,
        client: ClientConnection,
        wait_s: float | None = None,
    ) -> None:
        self.publisher = publisher
        self.client = client
        self.wait_s = RECORDING_WAIT_S if wait_s is None else wait_s
        # None wakes the worker to look at the deadline again.
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._queued = 0
        self._stop_deadline: float | None = None  # an audio_stop waits for its recording
        self._unpaired_at: float | None = None  # a recording came before its audio_stop

    async def audio(self, data: bytes) -> None:
        """Queue a recording; it answers a pending ``audio_stop`` if there is one."""
        now = time.monotonic()
        if self._stop_deadline is not None:
            self._stop_deadline = None
        else:
            self._unpaired_at = now
        if self._queued >= MAX_QUEUED_RECORDINGS:
            await self.client.error(
                RECORDINGS_QUEUED,
                f"{MAX_QUEUED_RECORDINGS} recordings are still being processed; this one was"
                " dropped",
                processing=True,
            )
            return
        self._queued += 1
        self._queue.put_nowait(data)

    async def push_to_talk(self, action: PushToTalk) -> None:
        """``audio_start`` begins a new recording (an earlier one is no longer its pair);
        ``audio_stop`` waits for its recording unless that already came."""
        if action == "start":
            self._unpaired_at = None
            return
        now = time.monotonic()
        if self._unpaired_at is not None and now - self._unpaired_at <= self.wait_s:
            self._unpaired_at = None
            return
        self._stop_deadline = now + self.wait_s
        self._queue.put_nowait(None)

    async def run(self) -> None:
        """Publish recordings in order, and report an ``audio_stop`` left without one."""
        while True:
            deadline = self._stop_deadline
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                async with asyncio.timeout(timeout):
                    data = await self._queue.get()
            except TimeoutError:
                if self._stop_deadline == deadline:
                    self._stop_deadline = None
                    await self.client.error(
                        RECORDING_MISSING,
                        f"audio_stop came, but no recording followed within {self.wait_s:g} s",
                        processing=True,
                    )
                continue
            if data is not None:
                self._queued -= 1
                await self._publish(data)

    async def _publish(self, data: bytes) -> None:
        try:
            pcm = await decode_utterance(data)
        except BadInputError as exc:
            # For S2 a recording that cannot be heard is failed voice processing.
            await self.client.error(exc.code, exc.message, processing=True)
            return
        await self.publisher.recording(pcm)
