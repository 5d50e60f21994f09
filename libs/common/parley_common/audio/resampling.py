"""Streaming sample-rate conversion of PCM16 LE mono audio through PyAV (FFmpeg's
swresample), for audio that arrives in small frames: a phone call's 8 kHz in and out.

``_pcm.resample_pcm`` converts a whole clip; a ``StreamResampler`` keeps the filter's state
between chunks, so a stream cut in 20 ms frames converts without a click at every edge.
"""

from __future__ import annotations

from fractions import Fraction

import av
from av.audio.resampler import AudioResampler

from parley_common.audio._pcm import BYTES_PER_SAMPLE, resampled_pcm

__all__ = ["StreamResampler"]


class StreamResampler:
    """Converts a stream of PCM16 LE mono chunks from ``from_rate`` to ``to_rate`` Hz.

    The filter holds back a few samples until more audio comes; ``flush`` returns them at
    the end of a stream. A sample split across two chunks is put back together.
    """

    def __init__(self, from_rate: int, to_rate: int) -> None:
        """Prepare a converter; rates in Hz."""
        if from_rate <= 0 or to_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {from_rate} -> {to_rate}")
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._resampler = (
            None
            if from_rate == to_rate
            else AudioResampler(format="s16", layout="mono", rate=to_rate)
        )
        self._pts = 0
        self._odd_byte = b""

    def process(self, pcm: bytes) -> bytes:
        """Convert the next chunk; returns the audio ready so far (possibly empty)."""
        data = self._odd_byte + pcm
        whole = len(data) - len(data) % BYTES_PER_SAMPLE
        self._odd_byte = data[whole:]
        if self._resampler is None or whole == 0:
            return data[:whole]
        samples = whole // BYTES_PER_SAMPLE
        frame = av.AudioFrame(format="s16", layout="mono", samples=samples)
        frame.planes[0].update(data[:whole])
        frame.sample_rate = self.from_rate
        frame.time_base = Fraction(1, self.from_rate)
        frame.pts = self._pts  # continuous timestamps: one stream, not separate clips
        self._pts += samples
        return resampled_pcm(self._resampler, frame)

    def flush(self) -> bytes:
        """End the stream: the audio still held back (a dangling half sample is dropped)."""
        self._odd_byte = b""
        if self._resampler is None:
            return b""
        tail = resampled_pcm(self._resampler, None)
        self._resampler = AudioResampler(format="s16", layout="mono", rate=self.to_rate)
        self._pts = 0
        return tail
