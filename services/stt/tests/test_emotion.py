"""Emotion detection's parts on their own: the label from valence and arousal, the text's
valence, prosody measured on synthetic voices of known pitch and loudness, and the speaker
baseline that turns prosody into arousal."""

from __future__ import annotations

import math

import numpy as np
import pytest
from prometheus_client import REGISTRY

from parley_common.contracts.bus import EmotionLabel, Word
from parley_stt.emotion import EmotionDetector
from parley_stt.emotion.label import PROTOTYPES, label
from parley_stt.emotion.prosody import SpeakerBaseline, measure, syllables
from parley_stt.emotion.text import frustration_cues, valence

RATE = 16_000


def voice(f0: float, seconds: float = 2.0, amplitude: float = 0.2, lead_s: float = 0.3) -> bytes:
    """A buzz with harmonics at ``f0`` (a vowel-like periodic sound), after ``lead_s`` of
    silence, as PCM16 16 kHz."""
    t = np.arange(int(seconds * RATE)) / RATE
    wave = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 8))
    wave = amplitude * wave / np.abs(wave).max()
    pcm = np.concatenate([np.zeros(int(lead_s * RATE)), wave])
    return (pcm * 32767).astype("<i2").tobytes()


@pytest.mark.parametrize("name", list(EmotionLabel))
def test_each_prototype_is_labelled_as_itself(name: EmotionLabel) -> None:
    v, a = PROTOTYPES[name]
    emotion = label(v, a)
    assert emotion.label is name
    assert math.isclose(sum(emotion.scores.values()), 1.0, abs_tol=1e-3)
    assert max(emotion.scores, key=emotion.scores.__getitem__) is name


def test_the_label_follows_the_voice_when_the_words_agree() -> None:
    assert label(0.7, 0.8).label is EmotionLabel.EXCITED
    assert label(0.7, -0.1).label is EmotionLabel.HAPPY
    assert label(-0.7, 0.8).label is EmotionLabel.ANGRY
    assert label(-0.7, 0.0).label is EmotionLabel.FRUSTRATED
    assert label(-0.7, -0.8).label is EmotionLabel.SAD
    # Neutral words said loudly are not anger: the words weigh more than the voice.
    assert label(0.0, 0.9).label is EmotionLabel.NEUTRAL
    assert label(0.0, -0.9).label is EmotionLabel.NEUTRAL
    assert label(5.0, -5.0).valence == 1.0  # clamped into the contract's range


def test_valence_of_words() -> None:
    assert valence("This is wonderful, thank you so much.") > 0.5
    assert valence("This is terrible, I hate it.") < -0.5
    assert valence("The meeting is on Tuesday at noon.") == 0.0
    # A complaint without a negative word still reads as negative.
    assert frustration_cues("It still doesn't work, I tried it twice.") == 2
    assert valence("It still doesn't work, I tried it twice.") <= -0.8
    assert frustration_cues("It works now.") == 0


def test_syllables_are_counted_per_script() -> None:
    assert syllables("wonderful") == 3
    assert syllables("make a table") == 4  # silent e, and -le is a syllable
    assert syllables("你好吗") == 3
    assert syllables("") == 0


@pytest.mark.parametrize("f0", [85.0, 120.0, 210.0, 330.0])
def test_pitch_of_a_synthetic_voice(f0: float) -> None:
    prosody = measure(voice(f0), "one two three four")
    assert prosody.pitch_hz is not None
    assert prosody.pitch_hz == pytest.approx(f0, rel=0.02)


def test_loudness_and_rate_are_measured_on_the_speech_only() -> None:
    quiet, loud = measure(voice(150, amplitude=0.05), "a"), measure(voice(150, amplitude=0.4), "a")
    assert quiet.level_db is not None
    assert loud.level_db is not None
    assert loud.level_db - quiet.level_db == pytest.approx(20 * math.log10(8), abs=0.5)
    # The leading silence is not speech: two seconds of it, whatever the padding.
    assert loud.speech_s == pytest.approx(2.0, abs=0.05)
    assert measure(voice(150), "ba ba ba ba").rate_sps == pytest.approx(2.0, rel=0.05)
    # Word timings, when the provider gives them, say how long the words took.
    words = (Word(word="ba", start=0.0, end=0.5), Word(word="ba", start=1.0, end=1.5))
    assert measure(voice(150), "ba ba", words).rate_sps == pytest.approx(2.0, rel=0.01)


def test_silence_has_no_prosody() -> None:
    prosody = measure(bytes(RATE * 2), "hello")
    assert (prosody.pitch_hz, prosody.level_db, prosody.rate_sps) == (None, None, None)
    assert SpeakerBaseline().arousal(prosody) == 0.0


def test_arousal_is_relative_to_how_the_speaker_usually_sounds() -> None:
    baseline = SpeakerBaseline()
    usual = measure(voice(120, amplitude=0.1), "one two three four five")
    # Nothing heard yet: no voice is loud or high on its own.
    assert baseline.arousal(usual) == 0.0
    baseline.learn(usual)
    assert baseline.arousal(usual) == pytest.approx(0.0, abs=0.05)
    animated = measure(voice(150, seconds=1.6, amplitude=0.3), "one two three four five")
    subdued = measure(voice(100, seconds=2.6, amplitude=0.04), "one two three four five")
    assert baseline.arousal(animated) > 0.6
    assert baseline.arousal(subdued) < -0.6
    # A higher voice for a deep-voiced user is animated; for a high-voiced one it is not.
    high_voiced = SpeakerBaseline()
    high_voiced.learn(measure(voice(220, amplitude=0.1), "one two three four five"))
    assert high_voiced.arousal(measure(voice(150, amplitude=0.1), "one two three four five")) < 0


def _judged() -> float:
    return REGISTRY.get_sample_value("parley_stt_emotion_seconds_count") or 0.0


async def test_a_detector_judges_in_order_and_learns_its_speaker() -> None:
    detector = EmotionDetector()
    before = _judged()
    first = await detector.judge(voice(120, amplitude=0.1), "This is wonderful, thank you.")
    assert first is not None
    assert (first.label, first.arousal) == (EmotionLabel.HAPPY, 0.0)
    loud = await detector.judge(voice(160, seconds=1.5, amplitude=0.35), "I love it, amazing!")
    assert loud is not None
    assert loud.label is EmotionLabel.EXCITED
    assert _judged() == before + 2  # each judgement is timed
