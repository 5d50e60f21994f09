"""The text-to-speech capability: what every TTS adapter implements."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class VoiceInfo:
    """A voice a provider offers."""

    id: str
    name: str
    language: str | None = None
    gender: str | None = None
    description: str | None = None


class TtsProvider(Protocol):
    """A streaming speech synthesiser, registered by name."""

    name: str
    sample_rate: int  # of the PCM16 mono audio ``synthesize`` yields

    def synthesize(self, text: str, voice: str | None) -> AsyncGenerator[bytes, None]:
        """Yield PCM16 LE mono chunks for ``text``. Closing the iterator stops synthesis."""
        ...

    async def voices(self) -> list[VoiceInfo]:
        """The voices this provider offers."""
        ...
