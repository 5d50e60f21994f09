"""Spoken test audio, synthesised at test time with the Piper voice Parley's TTS ships, so the
STT tests need no recordings in the repository."""

from __future__ import annotations

from collections.abc import Callable

import pytest


@pytest.fixture(scope="session")
def say() -> Callable[[str], bytes]:
    """Text to speech as the STT service receives it: PCM16 LE mono 16 kHz (cached per text)."""
    pytest.importorskip("piper", reason="test audio is synthesised with piper-tts")
    from bench.audio import spoken

    return spoken
