"""Streaming PCM16 resampling: lengths, pitch, chunk boundaries, odd byte counts."""

from __future__ import annotations

import random

import numpy as np
import pytest

from parley_tts.resample import Resampler

# soxr dithers its int16 output, so the same audio cut differently may differ in the last bits.
LSB_TOLERANCE = 3


def tone(frequency: float, rate: int, seconds: float = 1.0, amplitude: float = 10_000) -> bytes:
    t = np.arange(round(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype("<i2").tobytes()


def samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.int64)


def feed_in_chunks(resampler: Resampler, pcm: bytes, seed: int, max_bytes: int = 999) -> bytes:
    rng = random.Random(seed)
    out = b""
    i = 0
    while i < len(pcm):
        size = rng.randint(1, max_bytes)  # odd sizes split samples across chunks
        out += resampler.process(pcm[i : i + size])
        i += size
    return out + resampler.flush()


def test_identity_passes_audio_through_and_keeps_samples_whole() -> None:
    resampler = Resampler(24_000, 24_000)
    assert resampler.process(b"\x01\x02\x03") == b"\x01\x02"
    assert resampler.process(b"\x04") == b"\x03\x04"
    assert resampler.process(b"") == b""
    pcm = tone(440, 24_000, 0.1)
    assert resampler.process(pcm) == pcm
    assert resampler.flush() == b""


@pytest.mark.parametrize(
    ("src", "dst"),
    [(22_050, 24_000), (22_050, 16_000), (24_000, 48_000), (48_000, 16_000), (22_050, 8_000)],
)
def test_output_length_matches_the_rate_ratio(src: int, dst: int) -> None:
    pcm = tone(440, src, 1.3)
    out = feed_in_chunks(Resampler(src, dst), pcm, seed=src + dst)
    assert len(out) % 2 == 0
    assert abs(len(out) // 2 - round(len(pcm) // 2 * dst / src)) <= 1


@pytest.mark.parametrize(("src", "dst"), [(22_050, 24_000), (22_050, 16_000), (16_000, 48_000)])
@pytest.mark.parametrize("frequency", [440.0, 1_000.0, 3_100.0])
def test_a_tone_keeps_its_pitch_and_level(src: int, dst: int, frequency: float) -> None:
    out = samples(feed_in_chunks(Resampler(src, dst), tone(frequency, src), seed=1))
    spectrum = np.abs(np.fft.rfft(out * np.hanning(len(out))))
    peak_hz = np.argmax(spectrum) * dst / len(out)
    assert abs(peak_hz - frequency) <= 2.0
    middle = out[len(out) // 10 : -len(out) // 10]  # away from the filter's edges
    rms = np.sqrt(np.mean(middle.astype(np.float64) ** 2))
    assert rms == pytest.approx(10_000 / np.sqrt(2), rel=0.03)


def test_frequencies_above_the_new_nyquist_are_filtered_not_aliased() -> None:
    out = samples(feed_in_chunks(Resampler(22_050, 16_000), tone(9_000, 22_050), seed=2))
    middle = out[len(out) // 10 : -len(out) // 10]
    assert np.sqrt(np.mean(middle.astype(np.float64) ** 2)) < 10  # of about 7071 going in


def test_chunking_does_not_change_the_audio() -> None:
    pcm = tone(440, 22_050) + tone(2_000, 22_050, 0.5)
    reference = Resampler(22_050, 24_000)
    whole = samples(reference.process(pcm) + reference.flush())
    for seed in range(3):
        chunked = samples(feed_in_chunks(Resampler(22_050, 24_000), pcm, seed=seed))
        assert len(chunked) == len(whole)
        assert np.abs(chunked - whole).max() <= LSB_TOLERANCE


def test_single_byte_chunks_reassemble_samples() -> None:
    pcm = tone(1_000, 22_050, 0.05)
    reference = Resampler(22_050, 16_000)
    whole = samples(reference.process(pcm) + reference.flush())
    resampler = Resampler(22_050, 16_000)
    out = b"".join(resampler.process(pcm[i : i + 1]) for i in range(len(pcm)))
    one_by_one = samples(out + resampler.flush())
    assert len(one_by_one) == len(whole)
    assert np.abs(one_by_one - whole).max() <= LSB_TOLERANCE


def test_flush_ends_one_stream_and_readies_the_next() -> None:
    pcm = tone(440, 22_050, 0.4)
    resampler = Resampler(22_050, 24_000)
    first = samples(resampler.process(pcm + b"\x07") + resampler.flush())  # odd byte dropped
    second = samples(resampler.process(pcm) + resampler.flush())
    assert len(first) == len(second) == round(len(pcm) // 2 * 24_000 / 22_050)
    assert np.abs(first - second).max() <= LSB_TOLERANCE


def test_little_audio_is_held_back_until_flush() -> None:
    resampler = Resampler(22_050, 24_000)
    ready = len(resampler.process(tone(440, 22_050, 0.2))) // 2
    held_ms = (0.2 * 24_000 - ready) / 24
    assert held_ms < 12  # it delays every sentence's last syllable until the next arrives


def test_rejects_bad_rates() -> None:
    with pytest.raises(ValueError, match="positive"):
        Resampler(0, 24_000)
