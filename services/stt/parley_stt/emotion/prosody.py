"""Prosody of one utterance (pitch, loudness, speaking rate) measured with numpy alone, and a
per-speaker baseline that turns it into arousal: how much more (or less) animated the user
sounds than they usually do."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from parley_common.contracts.bus import Word

SAMPLE_RATE = 16_000
FRAME = 640  # 40 ms: two periods of the lowest pitch searched
HOP = 320  # 20 ms: enough frames for a median, half the cost of 10 ms
FFT_SIZE = 1024  # >= FRAME + the longest lag: the correlation does not wrap around
MIN_HZ, MAX_HZ = 70.0, 400.0
# A frame this far below the utterance's loudest counts as a pause, not speech.
SPEECH_GATE_DB = 30.0
SILENCE_FLOOR = 1e-4  # RMS (full scale 1.0) below which nothing is speech
# Normalised autocorrelation a periodic (voiced) frame reaches at its pitch period.
VOICED_CORRELATION = 0.6
SUBHARMONIC_MARGIN = 0.9

# The baseline becomes a moving average over about this many utterances.
BASELINE_UTTERANCES = 10

# How far from the baseline a feature goes in a clearly animated (or subdued) utterance:
# these steps count as one unit of arousal each.
PITCH_STEP_SEMITONES = 2.0
LEVEL_STEP_DB = 5.0
RATE_STEP_OCTAVES = 0.4  # log2 of the rate ratio (~30 % faster): a noisy cue


@dataclass(frozen=True)
class Prosody:
    """What an utterance sounded like; ``None`` for what could not be measured."""

    pitch_hz: float | None  # median fundamental frequency of the voiced frames
    level_db: float | None  # loudness of the speech frames, dB relative to full scale
    rate_sps: float | None  # syllables per second of speech
    speech_s: float  # how long the user actually spoke (pauses left out)


def _frames(samples: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Overlapping frames of ``samples`` (a view: nothing is copied)."""
    if len(samples) < FRAME:
        return np.zeros((0, FRAME), dtype=np.float32)
    return np.lib.stride_tricks.sliding_window_view(samples, FRAME)[::HOP]


_WINDOW = np.hanning(FRAME).astype(np.float32)


def _window_correlation() -> npt.NDArray[np.float32]:
    corr = np.fft.irfft(np.abs(np.fft.rfft(_WINDOW, n=FFT_SIZE)) ** 2)[:FRAME]
    return np.asarray(corr / corr[0], dtype=np.float32)


_WINDOW_CORRELATION = _window_correlation()
_MIN_LAG, _MAX_LAG = int(SAMPLE_RATE / MAX_HZ), int(SAMPLE_RATE / MIN_HZ)


def _pitch(frames: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Each frame's fundamental frequency by normalised autocorrelation; NaN if unvoiced."""
    if len(frames) == 0:
        return np.zeros(0)
    centred = frames - frames.mean(axis=1, keepdims=True)
    spectrum = np.fft.rfft(centred * _WINDOW, n=FFT_SIZE, axis=1)
    corr = np.fft.irfft(np.abs(spectrum) ** 2, n=FFT_SIZE, axis=1)[:, : _MAX_LAG + 2]
    energy = corr[:, :1]
    # Dividing by the window's own autocorrelation undoes its taper, which would otherwise
    # favour short lags (pitch read too high); see Boersma (1993).
    corr = corr / np.where(energy > 0, energy, 1.0) / _WINDOW_CORRELATION[: _MAX_LAG + 2]
    band = corr[:, _MIN_LAG : _MAX_LAG + 1]
    best = band.max(axis=1)
    # The shortest lag that is nearly as good as the best: a multiple of the period
    # correlates as well as the period itself, and would read an octave low.
    near = band >= SUBHARMONIC_MARGIN * best[:, None]
    local = np.zeros_like(near)
    local[:, 1:-1] = (band[:, 1:-1] >= band[:, :-2]) & (band[:, 1:-1] >= band[:, 2:])
    lag = np.argmax(near & local, axis=1)
    lag = np.where((near & local).any(axis=1), lag, band.argmax(axis=1))
    rows = np.arange(len(band))
    # Parabolic interpolation around the peak: a fraction of a sample is ~1 % of pitch.
    inner = np.clip(lag, 1, band.shape[1] - 2)
    left, mid, right = band[rows, inner - 1], band[rows, inner], band[rows, inner + 1]
    curve = left - 2 * mid + right
    shift = np.where(curve < 0, 0.5 * (left - right) / np.where(curve < 0, curve, -1.0), 0.0)
    hz = SAMPLE_RATE / (inner + _MIN_LAG + np.clip(shift, -1, 1))
    return np.where(band[rows, lag] >= VOICED_CORRELATION, hz, np.nan)


_VOWELS = re.compile(r"[aeiouyàâäéèêëîïôöûüùáíóúãõœæøå]+", re.IGNORECASE)
_LETTERS = re.compile(r"[^\W\d_]+")
_ALPHABETIC = re.compile(r"[a-zà-ÿ]", re.IGNORECASE)


def syllables(text: str) -> int:
    """About how many syllables ``text`` has: vowel groups in a Latin-script word (a
    final silent e left out), one per character in other scripts (a Chinese character, a
    Japanese kana or a Korean block is about one)."""
    count = 0
    for word in _LETTERS.findall(text):
        if not _ALPHABETIC.search(word):
            count += len(word)
            continue
        groups = len(_VOWELS.findall(word))
        if groups > 1 and word.lower().endswith("e") and not word.lower().endswith("le"):
            groups -= 1
        count += max(1, groups)
    return count


def _speech_seconds(words: Sequence[Word]) -> float | None:
    timed = [w for w in words if w.end > w.start]
    if len(timed) < 2:
        return None
    return sum(w.end - w.start for w in timed)


def measure(pcm: bytes, text: str, words: Sequence[Word] = ()) -> Prosody:
    """The prosody of one utterance: PCM16 LE mono 16 kHz, its transcript and (when the
    provider gives them) its word timings. Costs a few milliseconds a second of audio."""
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2").astype(np.float32)
    frames = _frames(samples / 32768.0)
    rms = np.sqrt(np.einsum("ij,ij->i", frames, frames) / FRAME) if len(frames) else frames
    if len(frames) == 0 or rms.max() < SILENCE_FLOOR:
        return Prosody(pitch_hz=None, level_db=None, rate_sps=None, speech_s=0.0)
    gate = max(SILENCE_FLOOR, rms.max() * 10 ** (-SPEECH_GATE_DB / 20))
    speech = rms >= gate
    pitch = _pitch(frames[speech])
    voiced = pitch[~np.isnan(pitch)]
    level = 10 * math.log10(float(np.mean(rms[speech] ** 2)))
    # Articulation rate: syllables per second of speech, the pauses left out (a comma's
    # pause is not slow speech). The provider's word timings say where the words are; the
    # audio's loud frames otherwise.
    audio_s = float(speech.sum()) * HOP / SAMPLE_RATE
    span = _speech_seconds(words) or audio_s
    count = syllables(text)
    return Prosody(
        pitch_hz=float(np.median(voiced)) if len(voiced) >= 3 else None,
        level_db=level,
        rate_sps=count / span if count and span > 0 else None,
        speech_s=audio_s,
    )


class _Mean:
    """A running mean that becomes a moving average once it has ``BASELINE_UTTERANCES``."""

    def __init__(self) -> None:
        self.value: float | None = None
        self._count = 0

    def add(self, x: float) -> None:
        self._count = min(self._count + 1, BASELINE_UTTERANCES)
        self.value = x if self.value is None else self.value + (x - self.value) / self._count


class SpeakerBaseline:
    """How one session's user usually sounds: a moving average of their utterances'
    prosody. Voices differ too much (an octave of pitch, any microphone gain) for a
    population norm to mean anything, so a feature counts only once the speaker has been
    heard: the first utterance's arousal is 0."""

    def __init__(self) -> None:
        self._log_pitch = _Mean()
        self._level = _Mean()
        self._log_rate = _Mean()

    def arousal(self, prosody: Prosody) -> float:
        """How animated ``prosody`` is next to the baseline: about -1 (subdued, slow, low)
        to 1 (loud, fast, high); 0 when nothing could be compared."""
        steps: list[float] = []
        pitch, level, rate = self._log_pitch.value, self._level.value, self._log_rate.value
        if prosody.pitch_hz is not None and pitch is not None:
            semitones = 12 * (math.log2(prosody.pitch_hz) - pitch)
            steps.append(semitones / PITCH_STEP_SEMITONES)
        if prosody.level_db is not None and level is not None:
            steps.append((prosody.level_db - level) / LEVEL_STEP_DB)
        if prosody.rate_sps is not None and rate is not None:
            steps.append((math.log2(prosody.rate_sps) - rate) / RATE_STEP_OCTAVES)
        if not steps:
            return 0.0
        return math.tanh(sum(steps) / len(steps))

    def learn(self, prosody: Prosody) -> None:
        """Take ``prosody`` into the speaker's baseline."""
        if prosody.pitch_hz is not None:
            self._log_pitch.add(math.log2(prosody.pitch_hz))
        if prosody.level_db is not None:
            self._level.add(prosody.level_db)
        if prosody.rate_sps is not None:
            self._log_rate.add(math.log2(prosody.rate_sps))
