"""One session's emotion detection: each final utterance is measured off the event loop
and judged against what the session has heard of its speaker so far."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence

import numpy as np

from parley_common.contracts.bus import Emotion, Word
from parley_common.observability.metrics import latency_histogram
from parley_stt.emotion.label import label
from parley_stt.emotion.prosody import SAMPLE_RATE, SpeakerBaseline, measure
from parley_stt.emotion.text import valence

log = logging.getLogger(__name__)

# Part of the end of every turn that detects emotion: the final waits for it.
EMOTION_SECONDS = latency_histogram(
    "parley_stt_emotion_seconds", "Judging a final utterance's tone (off the event loop)"
)


class EmotionDetector:
    """Labels the tone of a session's user turns, in the order they are given."""

    def __init__(self) -> None:
        self.baseline = SpeakerBaseline()
        # Finals of one session are judged one at a time (the baseline is theirs in order).
        self._lock = asyncio.Lock()

    def judge_now(
        self, pcm: bytes, text: str, words: Sequence[Word] = (), learn: bool = True
    ) -> Emotion:
        """The tone of one utterance (PCM16 LE mono 16 kHz with its transcript), then the
        utterance joins the speaker's baseline (not with ``learn`` false: a speculative
        final's, which its turn's final judges again). Blocking: a few ms of numpy."""
        with EMOTION_SECONDS.time():
            return self._judge(pcm, text, words, learn)

    def _judge(self, pcm: bytes, text: str, words: Sequence[Word], learn: bool = True) -> Emotion:
        prosody = measure(pcm, text, words)
        arousal = self.baseline.arousal(prosody)
        if learn:
            self.baseline.learn(prosody)
        return label(valence(text), arousal)

    async def judge(
        self, pcm: bytes, text: str, words: Sequence[Word] = (), learn: bool = True
    ) -> Emotion | None:
        """``judge_now`` off the event loop; None if it failed (the turn goes on without a
        label: a tone is worth less than the answer it would hold up)."""
        async with self._lock:
            try:
                return await asyncio.to_thread(self.judge_now, pcm, text, words, learn)
            except Exception:
                log.exception("emotion detection failed")
                return None


@functools.cache
def _warm_up() -> None:
    # The first analysis of a process reads VADER's lexicon and plans numpy's FFTs
    # (~150 ms): done once, before a session's first final waits on it.
    buzz = np.sin(2 * np.pi * 150 * np.arange(SAMPLE_RATE // 2) / SAMPLE_RATE) * 8000
    EmotionDetector()._judge(buzz.astype("<i2").tobytes(), "warm up", ())


async def prepare_emotion() -> None:
    """Make the first emotion analysis of this process as fast as the others (off the
    event loop; instant after the first call)."""
    await asyncio.to_thread(_warm_up)
