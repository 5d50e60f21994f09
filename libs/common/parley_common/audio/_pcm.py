"""PCM16 LE mono bytes <-> PyAV frames, and draining a PyAV resampler, for the audio package.

Kept free of numpy: a frame's first plane is filled from and read back to bytes directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction

import av
from av.audio.resampler import AudioResampler

__all__ = ["BYTES_PER_SAMPLE", "frame_pcm", "pcm_frames", "resample_pcm", "resampled_pcm"]

BYTES_PER_SAMPLE = 2
# About 85 ms at 48 kHz: small enough to bound memory per frame, large enough that the
# per-frame overhead of PyAV stays negligible.
_CHUNK_SAMPLES = 4096


def pcm_frames(pcm: bytes, rate: int) -> Iterator[av.AudioFrame]:
    """Split PCM16 LE mono audio at ``rate`` Hz into timed s16 mono frames (an odd trailing
    byte, half a sample, is dropped)."""
    samples = len(pcm) // BYTES_PER_SAMPLE
    for start in range(0, samples, _CHUNK_SAMPLES):
        count = min(_CHUNK_SAMPLES, samples - start)
        frame = av.AudioFrame(format="s16", layout="mono", samples=count)
        frame.planes[0].update(pcm[start * BYTES_PER_SAMPLE : (start + count) * BYTES_PER_SAMPLE])
        frame.sample_rate = rate
        frame.time_base = Fraction(1, rate)
        frame.pts = start
        yield frame


def frame_pcm(frame: av.AudioFrame) -> bytes:
    """The PCM16 bytes of an s16 mono frame (its plane may be padded past the samples)."""
    return bytes(frame.planes[0])[: frame.samples * BYTES_PER_SAMPLE]


def resampled_pcm(resampler: AudioResampler, frame: av.AudioFrame | None) -> bytes:
    """Feed ``frame`` (``None`` flushes) to a resampler whose output is s16 mono and return
    the PCM it gives back."""
    return b"".join(frame_pcm(out) for out in resampler.resample(frame))


def resample_pcm(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """Convert a whole PCM16 LE mono clip from ``from_rate`` to ``to_rate`` Hz."""
    if from_rate == to_rate:
        return pcm[: len(pcm) - len(pcm) % BYTES_PER_SAMPLE]
    resampler = AudioResampler(format="s16", layout="mono", rate=to_rate)
    parts = [resampled_pcm(resampler, frame) for frame in pcm_frames(pcm, from_rate)]
    parts.append(resampled_pcm(resampler, None))
    return b"".join(parts)
