"""The tone of each user turn (session option ``detect_emotion``): the transcript's
sentiment (``text``), the voice's prosody next to the speaker's usual (``prosody``), and the
label they make together (``label``)."""

from __future__ import annotations

from parley_stt.emotion.detector import EmotionDetector, prepare_emotion

__all__ = ["EmotionDetector", "prepare_emotion"]
