"""The speech-to-text capability: what every STT adapter implements."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from parley_common.contracts.bus import Word

#: Audio every adapter receives: PCM16 LE mono at this rate.
SAMPLE_RATE = 16_000
BYTES_PER_SECOND = 2 * SAMPLE_RATE


@dataclass(frozen=True, slots=True)
class SttResult:
    """A transcript of the audio fed so far."""

    text: str
    is_final: bool
    confidence: float | None = None
    language: str | None = None
    words: tuple[Word, ...] = field(default_factory=tuple)


#: Where a stream pushes partial transcripts the moment its provider produces them (a
#: WebSocket's interim result, a streamed transcription's delta). Awaited by the stream, so
#: keep it quick (publish and return).
PartialSink = Callable[[SttResult], Awaitable[None]]


class SttStream(Protocol):
    """One utterance being recognised. Audio is PCM16 LE mono 16 kHz."""

    async def feed(self, pcm: bytes) -> None:
        """Append audio to the utterance."""

    async def interim(self) -> SttResult | None:
        """Best transcript of the audio so far (partial), or None if there is nothing yet."""

    async def finish(self) -> SttResult:
        """Final transcript of everything fed. More audio may follow (the turn resumed), and
        a later ``finish`` covers it all. Calling it again without new audio returns the same
        result without asking the provider again."""

    async def aclose(self) -> None:
        """Release the stream's resources (a provider connection is closed at once)."""


class SttProvider(Protocol):
    """A speech-to-text adapter, registered by name."""

    name: str
    #: True when the provider produces partials on its own and its streams push them through
    #: ``on_partial`` as they arrive: the session should then not poll ``interim()`` (it would
    #: only repeat the last pushed partial). False: partials exist only when polled.
    pushes_partials: bool

    async def open(
        self,
        language: str | None,
        *,
        model: str | None = None,
        on_partial: PartialSink | None = None,
    ) -> SttStream:
        """Start recognising a new utterance; ``language`` None means detect it, ``model``
        None means the provider's configured default. Returns at once: a provider connection
        opens in the background and audio fed meanwhile is buffered."""
