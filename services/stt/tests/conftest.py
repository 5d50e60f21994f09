"""Spoken test audio, synthesised at test time with the Piper voice Parley's TTS ships, so the
STT tests need no recordings in the repository, but for one (see data/README.md)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

RECORDING = Path(__file__).parent / "data" / "smart_turn_reference.npz"


@pytest.fixture(scope="session")
def say() -> Callable[[str], bytes]:
    """Text to speech as the STT service receives it: PCM16 LE mono 16 kHz (cached per text)."""
    pytest.importorskip("piper", reason="test audio is synthesised with piper-tts")
    from bench.audio import spoken

    return spoken


@pytest.fixture(scope="session")
def unfinished() -> bytes:
    """ "I'd like to book a table for", spoken slowly by Piper and recorded (PCM16 16 kHz): an
    unfinished sentence, the same samples on every run."""
    with np.load(RECORDING) as data:
        return bytes(data["pcm"].astype("<i2").tobytes())
