"""A TEST DOUBLE for the TTS capability: instant, deterministic audio, no model.

Tests and benchmarks use it to exercise the pipeline without the cost or variance of a real
synthesiser. It must never be selected by default or offered to users as a voice.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncGenerator

import numpy as np

from parley_tts.providers.base import VoiceInfo

__all__ = ["ScriptedTtsProvider"]

_VOICE = VoiceInfo(
    id="scripted",
    name="Scripted tone (test double)",
    description="A quiet sine wave whose length follows the text; for tests only.",
)


class ScriptedTtsProvider:
    """TEST DOUBLE: yields a quiet sine tone, ``ms_per_char`` per character of text, at once.

    The audio is deterministic (the same text gives the same bytes), never silent for
    non-blank text, and comes in ``chunk_ms`` pieces without any delay, so what a test
    measures is the pipeline around the synthesiser rather than the synthesiser.
    """

    name = "scripted"
    sample_rate = 24_000

    def __init__(
        self, *, ms_per_char: float = 60.0, chunk_ms: int = 20, frequency_hz: float = 440.0
    ) -> None:
        """Configure the tone: duration per character, chunk size and pitch."""
        if ms_per_char <= 0 or chunk_ms <= 0 or not 0 < frequency_hz < self.sample_rate / 2:
            raise ValueError("need ms_per_char > 0, chunk_ms > 0, 0 < frequency_hz < 12 kHz")
        self.ms_per_char = ms_per_char
        self.chunk_ms = chunk_ms
        self.frequency_hz = frequency_hz

    def synthesize(
        self,
        text: str,
        voice: str | None,
        *,
        model: str | None = None,
        speed: float | None = None,
    ) -> AsyncGenerator[bytes, None]:
        """Yield the tone for ``text`` in ``chunk_ms`` chunks; blank text yields nothing.

        Raises ``ValueError`` at once for a voice other than None or "scripted". ``model``
        is ignored (there is one tone); ``speed`` divides the duration.
        """
        if voice not in (None, _VOICE.id):
            raise ValueError(
                f"unknown voice {voice!r} for the scripted TTS; it has only 'scripted'"
            )
        if speed is not None and speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        return self._stream(text, speed or 1.0)

    async def voices(self) -> list[VoiceInfo]:
        """The one pseudo-voice."""
        return [_VOICE]

    async def _stream(self, text: str, speed: float) -> AsyncGenerator[bytes, None]:
        chars = len(text.strip())
        total = round(self.sample_rate * chars * self.ms_per_char / 1000 / speed)
        step = self.sample_rate * self.chunk_ms // 1000
        # About -20 dBFS: clearly audible in a recording, not loud enough to startle anyone.
        amplitude = 3000
        radians_per_sample = 2 * math.pi * self.frequency_hz / self.sample_rate
        for first in range(0, total, step):
            index = np.arange(first, min(first + step, total))
            tone = amplitude * np.sin(index * radians_per_sample)
            yield tone.astype("<i2").tobytes()
            # Instant, yet a checkpoint per chunk: a consumer that closes the stream or is
            # cancelled mid-reply behaves as it would with a real, slower provider.
            await asyncio.sleep(0)
