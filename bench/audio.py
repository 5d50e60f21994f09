"""Spoken test audio for tests and benchmarks: questions spoken by the local Piper voice,
resampled to what a client sends (PCM16 mono 16 kHz), plus silence and framing helpers."""

from __future__ import annotations

import re
from collections.abc import Iterator

from parley_tts.providers.piper import PiperTtsProvider
from parley_tts.resample import Resampler

INPUT_RATE = 16_000
BYTES_PER_MS = INPUT_RATE * 2 // 1000
FRAME_MS = 20

_cache: dict[str, bytes] = {}


async def speak(text: str) -> bytes:
    """``text`` spoken by Piper as PCM16 mono 16 kHz (cached per process)."""
    if text not in _cache:
        tts = PiperTtsProvider()
        resampler = Resampler(tts.sample_rate, INPUT_RATE)
        parts = [resampler.process(chunk) async for chunk in tts.synthesize(text, None)]
        parts.append(resampler.flush())
        _cache[text] = b"".join(parts)
    return _cache[text]


def silence(ms: int) -> bytes:
    """``ms`` of digital silence."""
    return bytes(ms * BYTES_PER_MS)


def frames(pcm: bytes, ms: int = FRAME_MS) -> Iterator[bytes]:
    """``pcm`` cut into frames of ``ms`` (the last one padded with silence)."""
    step = ms * BYTES_PER_MS
    for i in range(0, len(pcm), step):
        frame = pcm[i : i + step]
        yield frame + bytes(step - len(frame))


def duration_ms(pcm: bytes) -> float:
    """Length of PCM16 16 kHz audio in milliseconds."""
    return len(pcm) / BYTES_PER_MS


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word-level edit distance divided by the reference length (punctuation ignored)."""
    ref, hyp = _words(reference), _words(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1] / max(1, len(ref))
