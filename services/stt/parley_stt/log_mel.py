"""Whisper-style log-mel features of the last 8 s of 16 kHz audio, as Smart Turn v3 reads them.

The maths is that of Pipecat's ``smart_turn/_whisper_features.py`` (itself Hugging Face's
``WhisperFeatureExtractor`` with ``chunk_length=8``), reimplemented here so the STT service
needs neither Pipecat nor transformers:

1. keep the last 8 s (128 000 samples), zero-padding at the *start* when shorter;
2. normalise the waveform to zero mean, unit variance (float32, ``var + 1e-7``);
3. reflect-pad 200 samples each side, 400-sample periodic Hann frames every 160 samples
   (801 frames), power spectrum of each (float64);
4. 80 Slaney-scale mel filters from 0 to 8 kHz, Slaney area-normalised; floor 1e-10, log10;
5. drop the last frame (800 remain), clamp to 8 below the maximum, then ``(x + 4) / 4``.

A test compares the result with a reference computed by Pipecat's own code on a recording.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["N_FRAMES", "N_MELS", "SAMPLE_RATE", "WINDOW_SAMPLES", "last_window", "log_mel_features"]

SAMPLE_RATE = 16_000
WINDOW_SAMPLES = 8 * SAMPLE_RATE
N_FFT = 400
HOP = 160
N_MELS = 80
N_FRAMES = WINDOW_SAMPLES // HOP
_NORM_EPS = 1e-7
_POWER_FLOOR = 1e-10
_DYNAMIC_RANGE = 8.0  # in log10 units: 80 dB below the loudest bin

FloatArray = npt.NDArray[np.float32]

# Slaney's mel scale: linear up to 1 kHz (200/3 Hz per mel), logarithmic above it.
_LINEAR_HZ_PER_MEL = 200.0 / 3.0
_KNEE_HZ = 1000.0
_KNEE_MEL = _KNEE_HZ / _LINEAR_HZ_PER_MEL  # 15
_MELS_PER_LOG_HZ = 27.0 / np.log(6.4)


def _hz_to_mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    safe = np.maximum(hz, _KNEE_HZ)  # the log branch is only taken above the knee
    above = _KNEE_MEL + np.log(safe / _KNEE_HZ) * _MELS_PER_LOG_HZ
    return np.where(hz < _KNEE_HZ, hz / _LINEAR_HZ_PER_MEL, above)


def _mel_to_hz(mel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.where(
        mel < _KNEE_MEL,
        mel * _LINEAR_HZ_PER_MEL,
        _KNEE_HZ * np.exp((mel - _KNEE_MEL) / _MELS_PER_LOG_HZ),
    )


def _mel_filters() -> npt.NDArray[np.float64]:
    """Triangular filters, shape ``(N_MELS, N_FFT // 2 + 1)``, each of unit area in Hz."""
    edges_mel = np.linspace(
        _hz_to_mel(np.array(0.0)), _hz_to_mel(np.array(SAMPLE_RATE / 2)), N_MELS + 2
    )
    edges = _mel_to_hz(edges_mel)
    bins = np.linspace(0.0, SAMPLE_RATE // 2, N_FFT // 2 + 1)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lower) / (centre - lower)
    falling = (upper - bins[None, :]) / (upper - centre)
    triangles = np.maximum(0.0, np.minimum(rising, falling))
    return np.asarray(triangles * (2.0 / (upper - lower)), dtype=np.float64)


def _periodic_hann() -> npt.NDArray[np.float64]:
    n = np.arange(N_FFT, dtype=np.float64)
    return np.asarray(0.5 - 0.5 * np.cos(2.0 * np.pi * n / N_FFT), dtype=np.float64)


_FILTERS = _mel_filters()
_WINDOW = _periodic_hann()


def last_window(samples: FloatArray) -> FloatArray:
    """The last 8 s of ``samples`` (float, 16 kHz), zero-padded at the start when shorter."""
    tail = np.asarray(samples[-WINDOW_SAMPLES:], dtype=np.float32)
    if len(tail) == WINDOW_SAMPLES:
        return tail
    return np.concatenate([np.zeros(WINDOW_SAMPLES - len(tail), dtype=np.float32), tail])


def log_mel_features(samples: FloatArray) -> FloatArray:
    """Features of the last 8 s of ``samples`` (float in -1..1, 16 kHz mono): float32 array of
    shape ``(N_MELS, N_FRAMES)``, roughly in -1..1."""
    if samples.ndim != 1:
        raise ValueError(f"expected mono samples, got shape {samples.shape}")
    x = last_window(samples)
    # In float32, as the reference does: the normalised waveform must round the same way.
    x = (x - x.mean()) / np.sqrt(x.var() + np.float32(_NORM_EPS))
    half = N_FFT // 2
    padded = np.pad(x.astype(np.float64), half, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    power = np.abs(np.fft.rfft(frames * _WINDOW, axis=-1)) ** 2  # (801, 201)
    mel = np.maximum(_POWER_FLOOR, _FILTERS @ power.T)  # (80, 801)
    log_mel = np.log10(mel)[:, :-1]
    log_mel = np.maximum(log_mel, log_mel.max() - _DYNAMIC_RANGE)
    features: FloatArray = ((log_mel + 4.0) / 4.0).astype(np.float32)
    return features
