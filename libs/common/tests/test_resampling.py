"""StreamResampler: a stream cut in 20 ms frames converts like the whole clip at once, keeps
its pitch and length, and flushes its tail."""

from __future__ import annotations

import numpy as np
import pytest

from parley_common.audio._pcm import resample_pcm
from parley_common.audio.resampling import StreamResampler


def _tone(rate: int, seconds: float, hz: float = 440.0) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return np.round(8000 * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()


def _samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64)


def _dominant_hz(pcm: bytes, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(_samples(pcm)))
    return float(np.argmax(spectrum) * rate / len(_samples(pcm)))


@pytest.mark.parametrize(("src", "dst"), [(8000, 16000), (24000, 8000), (16000, 8000)])
def test_frames_convert_like_the_whole_clip(src: int, dst: int) -> None:
    pcm = _tone(src, 1.0)
    frame = src * 2 // 50  # 20 ms
    resampler = StreamResampler(src, dst)
    streamed = b"".join(resampler.process(pcm[i : i + frame]) for i in range(0, len(pcm), frame))
    streamed += resampler.flush()
    whole = resample_pcm(pcm, src, dst)
    assert abs(len(streamed) - len(whole)) <= 4
    n = min(len(streamed), len(whole)) // 2
    assert np.max(np.abs(_samples(streamed)[:n] - _samples(whole)[:n])) <= 2
    assert abs(len(streamed) / 2 - dst) <= dst * 0.01  # one second stays one second
    assert abs(_dominant_hz(streamed, dst) - 440) < 2


def test_a_sample_split_across_chunks_is_put_back_together() -> None:
    pcm = _tone(8000, 0.1)
    whole = StreamResampler(8000, 16000)
    split = StreamResampler(8000, 16000)
    expected = whole.process(pcm) + whole.flush()
    got = split.process(pcm[:161]) + split.process(pcm[161:]) + split.flush()
    assert got == expected


def test_the_same_rate_passes_through() -> None:
    resampler = StreamResampler(8000, 8000)
    assert resampler.process(b"\x01\x02\x03") == b"\x01\x02"
    assert resampler.process(b"\x04") == b"\x03\x04"
    assert resampler.flush() == b""


def test_flush_starts_a_new_stream() -> None:
    resampler = StreamResampler(8000, 16000)
    pcm = _tone(8000, 0.2)
    first = resampler.process(pcm) + resampler.flush()
    second = resampler.process(pcm) + resampler.flush()
    assert first == second


def test_rates_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        StreamResampler(0, 16000)
