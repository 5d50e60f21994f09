"""Server-side echo cancellation: the assistant's voice taken out of the user's audio.

A client that cannot cancel echo itself (a WebSocket client on a speaker, no browser AEC)
sends the assistant's own voice back up its microphone; the STT would hear it as the user
and the assistant would interrupt itself. The gateway holds both streams: every frame it
sends the client (the far end) is placed on the client's playback timeline, estimated the
way ``Playout`` paces it (a frame plays after the ones before it, or at once when the
client ran dry), and every uplink frame (the near end) is placed on the same clock by its
arrival. WebRTC's AEC3 (``pywebrtc-audio``) then removes from each 10 ms near-end block the
echo of the far end played at that moment; the remaining delay (the client's buffers, the
room, the network back) is what AEC3's own delay estimator finds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt
from pywebrtc_audio import EchoCanceller

from parley_common.audio.resampling import StreamResampler
from parley_common.bus.audio import INPUT_SAMPLE_RATE
from parley_common.contracts.session import EchoCancellation, SessionConfig
from parley_common.contracts.ws import AudioPauseEvent, AudioResumeEvent
from parley_gateway.realtime.echo_presence import EchoPresence
from parley_gateway.realtime.playout import SendAudio

log = logging.getLogger(__name__)

AEC_RATE = INPUT_SAMPLE_RATE  # the uplink's rate: the far end is resampled to it
BLOCK = AEC_RATE // 100  # AEC3 works in 10 ms blocks
# Far-end audio kept after it played: AEC3's delay estimator looks back well under this.
KEEP_S = 2.0
# With nothing played for this long, no echo can come back: the uplink passes untouched.
ECHO_TAIL_S = 1.0
# An uplink frame this much later than its place on the clock (the client paused sending)
# is placed on the clock again from its arrival.
REANCHOR_S = 0.5

Samples = npt.NDArray[np.int16]
# AEC3's own threads (it releases the GIL): its blocks take a fraction of a millisecond and
# must not queue behind the default executor's long jobs (synthesis, transcription), or the
# uplink would stall and its clock with it. Each canceller is used by one call at a time.
_AEC_THREADS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="aec3")
SendPause = Callable[[AudioPauseEvent | AudioResumeEvent], Awaitable[None]]


def server_side(mode: EchoCancellation) -> bool:
    """Whether the gateway cancels echo for a PCM WebSocket client in ``mode``: yes unless
    the client said it does (``client``) or nobody should (``off``)."""
    return mode in (EchoCancellation.SERVER, EchoCancellation.AUTO)


def _pcm16(data: bytes) -> Samples:
    return np.frombuffer(data[: len(data) - len(data) % 2], dtype="<i2").astype(np.int16)


class FarEnd:
    """The assistant's audio as the client plays it, at ``AEC_RATE``, on a sample clock
    whose index 0 is ``origin`` (``perf_counter`` time)."""

    def __init__(self, output_rate: int) -> None:
        self.origin: float | None = None
        self.end = 0  # index after the last sample queued at the client
        self._resampler = StreamResampler(output_rate, AEC_RATE)
        self._chunks: deque[tuple[int, Samples]] = deque()  # (start index, samples)

    def index(self, when: float) -> int:
        """The sample index at ``when``."""
        assert self.origin is not None
        return round((when - self.origin) * AEC_RATE)

    def sent(self, frame: bytes, now: float) -> None:
        """``frame`` (PCM16 at the output rate) is sent now: it plays after what the client
        has queued, or now when it has nothing left to play."""
        if self.origin is None:
            self.origin = now
        samples = _pcm16(self._resampler.process(frame))
        if not len(samples):
            return
        start = max(self.index(now), self.end)
        self._chunks.append((start, samples))
        self.end = start + len(samples)
        horizon = self.index(now) - int(KEEP_S * AEC_RATE)
        while self._chunks and self._chunks[0][0] + len(self._chunks[0][1]) < horizon:
            self._chunks.popleft()

    def flush(self, now: float) -> None:
        """The client dropped what it had not played yet (a barge-in)."""
        if self.origin is None:
            return
        cut = self.index(now)
        while self._chunks and self._chunks[-1][0] >= cut:
            self._chunks.pop()
        if self._chunks:
            start, samples = self._chunks[-1]
            self._chunks[-1] = (start, samples[: max(0, cut - start)])
        self.end = min(self.end, cut)

    def read(self, start: int, n: int) -> Samples:
        """The ``n`` samples from index ``start`` (silence where nothing played)."""
        out = np.zeros(n, dtype=np.int16)
        for begin, samples in self._chunks:
            lo, hi = max(start, begin), min(start + n, begin + len(samples))
            if lo < hi:
                out[lo - start : hi - start] = samples[lo - begin : hi - begin]
        return out


class ServerEcho:
    """One connection's echo canceller: ``tee`` the audio sent to the client, ``cancel``
    each uplink frame. The AEC runs in a worker thread (it releases the GIL), one frame at
    a time, so the event loop only slices arrays."""

    def __init__(self, output_rate: int) -> None:
        self.far = FarEnd(output_rate)
        self._aec = EchoCanceller(sample_rate=AEC_RATE)
        self.presence = EchoPresence(BLOCK)
        self._pending: Samples = np.zeros(0, dtype=np.int16)  # less than a block
        self._anchor: float | None = None  # when near-end sample 0 was captured (estimate)
        self._received = 0  # near-end samples so far
        self.processed_blocks = 0  # blocks that went through AEC3 (the rest passed)

    def tee(self, send: SendAudio) -> SendAudio:
        """``send`` that also notes each frame as far-end audio playing from now on."""

        async def send_and_note(frame: bytes) -> None:
            self.far.sent(frame, time.perf_counter())
            await send(frame)

        return send_and_note

    def flush(self) -> None:
        """The client flushed its unplayed audio: it will not echo."""
        self.far.flush(time.perf_counter())

    def on_pause(self, send: SendPause) -> SendPause:
        """``send`` for the pause and resume events that also flushes on a pause: the
        client drops what it buffered, and playout sends it again on resume."""

        async def send_and_flush(event: AudioPauseEvent | AudioResumeEvent) -> None:
            if isinstance(event, AudioPauseEvent):
                self.flush()
            await send(event)

        return send_and_flush

    async def cancel(self, frame: bytes, now: float | None = None) -> bytes:
        """``frame`` (PCM16 16 kHz from the client, arrived ``now``) without the echo, in
        whole 10 ms blocks: a remainder waits for the next frame."""
        now = time.perf_counter() if now is None else now
        samples = _pcm16(frame)
        # When sample 0 was captured, if this frame came as early as frames can: a frame
        # later than that by REANCHOR_S starts the clock again (the client paused sending);
        # an earlier one corrects it (the burst after a stall, network jitter).
        implied = now - (self._received + len(samples)) / AEC_RATE
        if self._anchor is None or not 0 <= implied - self._anchor <= REANCHOR_S:
            self._anchor = implied
        self._received += len(samples)
        near = np.concatenate((self._pending, samples)) if len(self._pending) else samples
        whole = len(near) - len(near) % BLOCK
        self._pending = near[whole:]
        near = near[:whole]
        if not whole:
            return b""
        reference = self._reference(whole)
        if reference is None:
            self.presence.silence()
            return near.astype("<i2").tobytes()
        self.processed_blocks += whole // BLOCK
        # AEC3 runs even while there is no echo: it stays converged for when one comes.
        loop = asyncio.get_running_loop()
        out = await loop.run_in_executor(_AEC_THREADS, self._aec.process, near, reference)
        cancelling = self.presence.cancelling
        self.presence.push(near, reference)
        if self.presence.cancelling != cancelling:
            log.info(
                "echo %s",
                "heard: cancelling it" if self.presence.cancelling else "absent: uplink untouched",
                extra={"correlation": round(self.presence.correlation, 2)},
            )
        return (out if self.presence.cancelling else near).astype("<i2").tobytes()

    def _reference(self, n: int) -> Samples | None:
        """The far end under the near end's ``n`` samples just completed; None when nothing
        played within the echo tail (no echo to cancel)."""
        if self.far.origin is None or self._anchor is None:
            return None
        first = self._received - len(self._pending) - n  # near index of the first sample
        start = self.far.index(self._anchor) + first
        if self.far.end < start - int(ECHO_TAIL_S * AEC_RATE):
            return None
        return self.far.read(start, n)


def echo_for(config: SessionConfig) -> ServerEcho | None:
    """The echo canceller of a PCM WebSocket connection with ``config``, or None when the
    gateway does not cancel its echo."""
    if not server_side(config.echo_cancellation):
        return None
    return ServerEcho(config.output_sample_rate)
