"""The audio vocabulary of Parley's APIs: which encodings a file may be asked in, and the
ranges of the voice effects. Defined here once; ``parley_common.audio`` implements them."""

from __future__ import annotations

from typing import Literal

__all__ = ["PITCH_RANGE", "SPEED_RANGE", "AudioFormat", "Encoding"]

Encoding = Literal["mp3", "wav", "opus", "flac", "pcm"]
# S2's ``audio_format``: the encodings above and WebM/Opus, S2's default.
AudioFormat = Literal["mp3", "wav", "opus", "flac", "pcm", "webm"]

SPEED_RANGE = (0.5, 2.0)  # 2.0 speaks in half the time
PITCH_RANGE = (-2.0, 2.0)  # semitones
