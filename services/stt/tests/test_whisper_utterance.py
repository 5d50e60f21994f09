"""Whisper encoding the utterance instead of a 30 s window: what counts as padding, what the
encoder is given, and audio longer than one window."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pytest

from parley_stt.models import whisper_model_dir
from parley_stt.providers.local_whisper import transcribe
from parley_stt.providers.whisper_utterance import PAD_FRAMES, speech_frames

WEEKEND = (
    "The weather has been lovely this week. I went for a long walk by the river on Sunday. "
    "Tomorrow I plan to visit my sister in the city."
)


def test_speech_frames_end_where_the_zero_padding_begins() -> None:
    window = np.zeros((80, 3000), dtype=np.float32)
    window[:, :250] = -0.5
    window[:, 100:120] = 0.0  # a zero frame inside the speech is not padding
    window[3, 249] = 0.0  # nor is a frame with any value left

    assert speech_frames(window) == 250
    assert speech_frames(window[np.newaxis]) == 250  # a batch of one
    assert speech_frames(np.zeros((80, 3000), dtype=np.float32)) == 0


@pytest.fixture(scope="module")
def model() -> object:
    """Whisper base with the utterance-only encoder, as the provider loads it."""
    pytest.importorskip("faster_whisper")
    from parley_stt.providers.whisper_utterance import UtteranceWhisperModel

    return UtteranceWhisperModel(
        str(whisper_model_dir()), device="cpu", compute_type="int8", local_files_only=True
    )


@pytest.mark.models
def test_the_encoder_gets_the_speech_and_its_padding_only(
    model: object, say: Callable[[str], bytes]
) -> None:
    from faster_whisper import WhisperModel
    from faster_whisper.audio import pad_or_trim

    audio = np.frombuffer(say("How do I boil an egg?"), dtype="<i2").astype(np.float32) / 32768
    features = model.feature_extractor(audio)  # type: ignore[attr-defined]
    window = pad_or_trim(features[:, :-1])  # what faster-whisper hands the encoder
    speech = features.shape[-1] - 1

    short = model.encode(window)  # type: ignore[attr-defined]
    full = WhisperModel.encode(model, window)  # faster-whisper's own: 30 s

    # The encoder halves the frame rate: 3,000 frames in, 1,500 positions out.
    assert full.shape[1] == 1500
    assert short.shape[1] == (speech + PAD_FRAMES + 1) // 2
    assert short.shape[1] < 1500 // 3


@pytest.mark.models
@pytest.mark.slow
def test_audio_longer_than_a_window_is_transcribed_whole(
    model: object, say: Callable[[str], bytes]
) -> None:
    # A REST upload may last minutes: faster-whisper cuts it into 30 s windows, each encoded
    # up to its speech's end.
    pause = bytes(16_000)  # 0.5 s
    pcm = (say(WEEKEND) + pause) * 5
    audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / np.float32(32768)
    assert len(audio) / 16_000 > 35

    result = transcribe(model, audio, "en", final=True)

    heard = re.findall(r"[a-z']+", result.text.lower())
    expected = re.findall(r"[a-z']+", WEEKEND.lower()) * 5
    missing = sum(max(0, expected.count(w) - heard.count(w)) for w in set(expected))
    assert missing <= len(expected) // 10, result.text
    assert result.words[-1].end > 30  # the second window was heard too
    assert result.words[-1].end <= len(audio) / 16_000 + 0.5
