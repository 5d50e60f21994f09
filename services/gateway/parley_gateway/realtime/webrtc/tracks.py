"""A WebRTC call's audio: the browser's microphone track as the pipeline's 20 ms PCM16 16 kHz
frames, and the assistant's voice as an outgoing track that aiortc reads at real-time pace.

aiortc decodes and encodes the Opus itself (48 kHz); these two only convert to and from the
rates the session speaks: 16 kHz in, the session's ``output_sample_rate`` out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from fractions import Fraction

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame
from av.audio.resampler import AudioResampler

from parley_common.bus.audio import INPUT_SAMPLE_RATE

FRAME_MS = 20
_BYTES_PER_SAMPLE = 2
INPUT_FRAME_BYTES = INPUT_SAMPLE_RATE * FRAME_MS // 1000 * _BYTES_PER_SAMPLE  # 640
# The bridge's playout sends at most its lead ahead (250 ms by default); more queued here
# means it is not the playout writing, and the oldest audio goes.
MAX_BUFFERED_S = 5.0
# A reader this late (a stalled event loop) resumes from now instead of sending the missed
# frames in a burst.
_MAX_LAG_S = 0.1


def _pcm(frame: AudioFrame) -> bytes:
    # A plane may be padded past its samples.
    return bytes(frame.planes[0])[: frame.samples * _BYTES_PER_SAMPLE]


async def microphone_frames(track: MediaStreamTrack) -> AsyncIterator[bytes]:
    """The browser's audio track as 20 ms frames of PCM16 LE mono 16 kHz (640 bytes), what a
    WebSocket client sends; ends with the track."""
    resampler = AudioResampler(format="s16", layout="mono", rate=INPUT_SAMPLE_RATE)
    pending = bytearray()
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        if not isinstance(frame, AudioFrame):
            continue
        for out in resampler.resample(frame):
            pending += _pcm(out)
        while len(pending) >= INPUT_FRAME_BYTES:
            yield bytes(pending[:INPUT_FRAME_BYTES])
            del pending[:INPUT_FRAME_BYTES]


class PacedPcmTrack(MediaStreamTrack):
    """An outgoing audio track of PCM16 mono at ``rate``: what is written is read by aiortc's
    encoder one 20 ms frame at a time at real-time pace, and silence when nothing is queued
    (the stream never pauses, so the far end's jitter buffer stays steady). The gateway's is
    the assistant's voice, written by the session's playout; ``flush`` drops what has not
    been read yet: the barge-in cut, which a WebSocket client makes in its own player."""

    kind = "audio"

    def __init__(self, rate: int) -> None:
        super().__init__()
        self.rate = rate
        self._samples = rate * FRAME_MS // 1000
        self._frame_bytes = self._samples * _BYTES_PER_SAMPLE
        self._max_bytes = int(rate * MAX_BUFFERED_S) * _BYTES_PER_SAMPLE
        self._buffer = bytearray()
        self._time_base = Fraction(1, rate)
        self._started: float | None = None
        self._pts = 0
        self.frames_sent = 0
        self.audio_frames_sent = 0  # frames holding some of the assistant's audio

    @property
    def buffered_ms(self) -> float:
        """Audio written and not read yet."""
        return len(self._buffer) / (self.rate * _BYTES_PER_SAMPLE) * 1000

    def write(self, pcm: bytes) -> None:
        """Queue the assistant's audio (PCM16 LE mono at ``rate``)."""
        self._buffer += pcm
        excess = len(self._buffer) - self._max_bytes
        if excess > 0:
            del self._buffer[: excess + excess % _BYTES_PER_SAMPLE]

    def flush(self) -> None:
        """Drop every queued sample: nothing more of it is heard."""
        self._buffer.clear()

    async def recv(self) -> AudioFrame:
        """The next 20 ms frame, when it is due."""
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._started is None:
            self._started = now
        else:
            self._pts += self._samples
            due = self._started + self._pts / self.rate
            if now - due > _MAX_LAG_S:
                self._started = now - self._pts / self.rate
            elif due > now:
                await asyncio.sleep(due - now)
        chunk = bytes(self._buffer[: self._frame_bytes])
        del self._buffer[: self._frame_bytes]
        if chunk:
            self.audio_frames_sent += 1
        self.frames_sent += 1
        frame = AudioFrame(format="s16", layout="mono", samples=self._samples)
        frame.planes[0].update(chunk + bytes(self._frame_bytes - len(chunk)))
        frame.sample_rate = self.rate
        frame.time_base = self._time_base
        frame.pts = self._pts
        return frame
