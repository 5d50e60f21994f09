"""The speech-to-text capability: what every STT adapter implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from parley_common.contracts.bus import Word


@dataclass(frozen=True, slots=True)
class SttResult:
    """A transcript of the audio fed so far."""

    text: str
    is_final: bool
    confidence: float | None = None
    language: str | None = None
    words: tuple[Word, ...] = field(default_factory=tuple)


class SttStream(Protocol):
    """One utterance being recognised. Audio is PCM16 LE mono 16 kHz."""

    async def feed(self, pcm: bytes) -> None:
        """Append audio to the utterance."""

    async def interim(self) -> SttResult | None:
        """Best transcript of the audio so far (partial), or None if there is nothing yet."""

    async def finish(self) -> SttResult:
        """Final transcript of everything fed. More audio may follow (the turn resumed), and
        a later ``finish`` covers it all."""

    async def aclose(self) -> None:
        """Release the stream's resources."""


class SttProvider(Protocol):
    """A speech-to-text adapter, registered by name."""

    name: str

    async def open(self, language: str | None) -> SttStream:
        """Start recognising a new utterance; ``language`` None means detect it."""
