"""faster-whisper's WhisperModel, encoding the utterance instead of a 30 s window.

faster-whisper pads every window's log-Mel features with zeros to Whisper's 30 s (3,000
frames) before the encoder, so a 3 s question costs the encoder as much as 30 s of speech:
most of the final's time on a CPU. CTranslate2 accepts shorter inputs (OpenNMT/CTranslate2
#1446, 2023; faster-whisper 1.2 needs CTranslate2 4), so the encoder here gets the window's
speech plus ``PAD_FRAMES`` of that zero padding and no more.
Everything else (decoding, the temperature fallback, timestamps, word alignment, long audio
in several windows, language detection) stays faster-whisper's own. Only the padding is
removed, so what is encoded is exactly the start of the window faster-whisper would encode.

Imported only once faster-whisper is known to be installed (``local_whisper._load_model``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from faster_whisper import WhisperModel

__all__ = ["PAD_FRAMES", "UtteranceWhisperModel", "speech_frames"]

# 10 ms frames of padding kept after the speech. Whisper was trained on padded 30 s windows:
# with no padding it loops ("How do I boil an egg? How do I boil an egg? ..."), with 1 s it
# still repeated short utterances ("Hello. Hello.") 15 times in 90 on the bench's voice, with
# 2 s twice, with 3 s never (nor with 4 s or the full window), at a word error rate equal to
# the full window's. See docs/benchmarks.md.
PAD_FRAMES = 300


def speech_frames(features: np.ndarray[Any, Any]) -> int:
    """How many frames of ``features`` (..., mels, frames) come before the zero padding."""
    voiced = np.flatnonzero(np.any(features != 0, axis=tuple(range(features.ndim - 1))))
    return int(voiced[-1]) + 1 if voiced.size else 0


class UtteranceWhisperModel(WhisperModel):  # type: ignore[misc]  # faster-whisper is untyped
    """A WhisperModel whose encoder sees the speech of each window plus ``PAD_FRAMES``."""

    def encode(self, features: np.ndarray[Any, Any]) -> Any:
        """Encode ``features`` (a window padded to 3,000 frames) without the padding beyond
        ``PAD_FRAMES``. Trailing zero frames are taken for padding: a zero frame of speech,
        were there one, is the same input as padding."""
        keep = min(features.shape[-1], speech_frames(features) + PAD_FRAMES)
        return super().encode(features[..., :keep])
