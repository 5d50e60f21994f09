"""G.711 μ-law and A-law: the ITU reference points, every code round-trips, every sample
comes back within its quantisation step, and speech-like audio keeps a phone line's SNR."""

from __future__ import annotations

from typing import get_args

import numpy as np
import pytest

from parley_common.audio.g711 import G711Law, decode_g711, encode_g711

LAWS = get_args(G711Law)


def _pcm(samples: np.ndarray) -> bytes:
    return samples.astype("<i2").tobytes()


def _samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.int64)


def test_reference_points_of_the_standard() -> None:
    # G.711's published values: the codes of silence and of the largest magnitudes.
    assert encode_g711(_pcm(np.array([0])), "ulaw") == b"\xff"
    assert encode_g711(_pcm(np.array([0])), "alaw") == b"\xd5"
    assert _samples(decode_g711(b"\x80\x00", "ulaw")).tolist() == [32124, -32124]
    assert _samples(decode_g711(b"\xd5\x55", "alaw")).tolist() == [8, -8]
    assert _samples(decode_g711(b"\xaa\x2a", "alaw")).tolist() == [32256, -32256]


@pytest.mark.parametrize("law", LAWS)
def test_every_code_round_trips(law: G711Law) -> None:
    codes = bytes(range(256))
    again = encode_g711(decode_g711(codes, law), law)
    differing = [c for c, a in zip(codes, again, strict=True) if c != a]
    # μ-law has two codes for zero (+0 and -0); they encode back as one.
    assert differing == ([0x7F] if law == "ulaw" else [])


@pytest.mark.parametrize("law", LAWS)
def test_every_sample_comes_back_within_its_step(law: G711Law) -> None:
    samples = np.arange(-32768, 32768)
    back = _samples(decode_g711(encode_g711(_pcm(samples), law), law))
    error = np.abs(back - samples)
    # Logarithmic companding: the step grows with the magnitude, about 1/16 of it at most.
    assert np.all(error <= np.maximum(32, np.abs(samples) / 16 + 32))
    assert len(back) == len(samples)


@pytest.mark.parametrize("law", LAWS)
def test_a_voice_band_tone_keeps_a_phone_lines_quality(law: G711Law) -> None:
    t = np.arange(8000) / 8000
    tone = np.round(6000 * np.sin(2 * np.pi * 440 * t) + 2000 * np.sin(2 * np.pi * 1250 * t))
    back = _samples(decode_g711(encode_g711(_pcm(tone), law), law))
    noise = back - tone
    snr_db = 10 * np.log10(np.sum(tone**2) / np.sum(noise**2))
    assert snr_db > 30, snr_db  # G.711 gives about 38 dB on speech levels


def test_sizes_and_an_odd_byte() -> None:
    assert len(encode_g711(bytes(320), "ulaw")) == 160
    assert len(encode_g711(bytes(321), "alaw")) == 160  # the half sample is dropped
    assert len(decode_g711(bytes(160), "ulaw")) == 320
    assert encode_g711(b"", "ulaw") == b""
    assert decode_g711(b"", "alaw") == b""


def test_an_unknown_law_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown G\.711 law"):
        encode_g711(bytes(2), "mulaw")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"unknown G\.711 law"):
        decode_g711(bytes(2), "pcmu")  # type: ignore[arg-type]
