"""Spoken test audio for tests and benchmarks: questions spoken by the local Piper voice,
resampled to what a client sends (PCM16 mono 16 kHz), plus silence and framing helpers."""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Iterator
from typing import Any

import numpy as np

from parley_tts.models import piper_voice_paths
from parley_tts.resample import Resampler

INPUT_RATE = 16_000
BYTES_PER_MS = INPUT_RATE * 2 // 1000
FRAME_MS = 20


@functools.cache
def _voice() -> Any:
    from piper import PiperVoice

    model, config = piper_voice_paths()
    return PiperVoice.load(model, config)


@functools.cache
def spoken(text: str) -> bytes:
    """``text`` spoken by the local Piper voice as PCM16 mono 16 kHz, as a client's microphone
    would send it (cached per process). The same samples on every run: Piper's default noise
    draws a new rhythm each time, and a rare draw with a long pause mid-sentence made tests
    of turn-taking and transcription fail one run in many."""
    from piper import SynthesisConfig

    voice = _voice()
    steady = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    chunks = voice.synthesize(text, syn_config=steady)
    samples = np.concatenate([chunk.audio_float_array for chunk in chunks])
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    resampler = Resampler(voice.config.sample_rate, INPUT_RATE)
    return resampler.process(pcm) + resampler.flush()


async def speak(text: str) -> bytes:
    """``spoken`` from async code, synthesised off the event loop."""
    return await asyncio.to_thread(spoken, text)


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
