"""Spoken test audio in another tone of voice: an utterance played faster and higher, or
slower and lower, and louder or quieter, the way animated or subdued speech differs from
calm speech (for the emotion tests)."""

from __future__ import annotations

import numpy as np

from bench.audio import INPUT_RATE
from parley_tts.resample import Resampler

# (speed and pitch factor, gain): played back this much faster, this much louder.
VOICES = {"calm": (1.0, 1.0), "animated": (1.2, 2.0), "subdued": (0.85, 0.45)}


def in_voice(pcm: bytes, voice: str) -> bytes:
    """``pcm`` (PCM16 16 kHz) in one of ``VOICES``: pitch and tempo scaled together, as a
    tape played faster or slower, and the level by the voice's gain (clipped at full scale)."""
    factor, gain = VOICES[voice]
    if factor != 1.0:
        resampler = Resampler(round(INPUT_RATE * factor), INPUT_RATE)
        pcm = resampler.process(pcm) + resampler.flush()
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) * gain
    return bytes(np.clip(samples, -32768, 32767).astype("<i2").tobytes())
