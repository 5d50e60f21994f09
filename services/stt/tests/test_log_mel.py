"""The end-of-turn model's features: Pipecat's own numbers on a recording, and the 8 s window
(the last 8 s kept, shorter audio zero-padded at the start)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from parley_stt.log_mel import N_FRAMES, N_MELS, WINDOW_SAMPLES, last_window, log_mel_features

REFERENCE = Path(__file__).parent / "data" / "smart_turn_reference.npz"


def _recording() -> tuple[np.ndarray, np.ndarray]:
    with np.load(REFERENCE) as data:
        return data["pcm"].astype(np.float32) / 32768.0, data["features"]


def test_the_features_of_a_recording_match_pipecats() -> None:
    samples, reference = _recording()
    features = log_mel_features(samples)
    assert features.shape == reference.shape == (N_MELS, N_FRAMES)
    assert features.dtype == np.float32
    np.testing.assert_allclose(features, reference, rtol=0, atol=1e-5)
    # The recording is speech: the features are far from the constant of a silent window.
    assert float(np.ptp(reference)) > 1.0


def test_shorter_audio_is_padded_with_zeros_before_it() -> None:
    samples, _ = _recording()
    padded = np.concatenate([np.zeros(WINDOW_SAMPLES - len(samples), np.float32), samples])
    np.testing.assert_array_equal(log_mel_features(samples), log_mel_features(padded))
    assert np.array_equal(last_window(samples)[-len(samples) :], samples)


def test_only_the_last_eight_seconds_are_heard() -> None:
    rng = np.random.default_rng(7)
    earlier = (rng.standard_normal(3 * 16_000) * 0.3).astype(np.float32)
    window = (rng.standard_normal(WINDOW_SAMPLES) * 0.1).astype(np.float32)
    np.testing.assert_array_equal(
        log_mel_features(np.concatenate([earlier, window])), log_mel_features(window)
    )
    assert not np.array_equal(log_mel_features(window[16_000:]), log_mel_features(window))
