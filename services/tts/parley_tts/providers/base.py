"""The text-to-speech capability: what every TTS adapter implements.

Two shapes of synthesis exist. Every adapter has ``TtsProvider.synthesize``: one call per
piece of text (the session cuts the answer into sentences), audio streamed back. Providers
that accept text as it is written (ElevenLabs' input-streaming WebSocket, Deepgram Aura's
WebSocket) also implement ``StreamingTtsProvider.open_stream``: one ``TtsInputStream`` per
turn, fed the answer's deltas as the LLM produces them, so the provider chooses its own
chunking and keeps prosody across sentences.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


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

    def synthesize(
        self,
        text: str,
        voice: str | None,
        *,
        model: str | None = None,
        speed: float | None = None,
    ) -> AsyncGenerator[bytes, None]:
        """Yield PCM16 LE mono chunks for ``text``. Closing the iterator stops synthesis.

        ``voice`` and ``model`` None mean the provider's configured defaults; ``speed`` (1.0
        = normal) is passed to providers that have it and ignored by the others.
        """
        ...

    async def voices(self) -> list[VoiceInfo]:
        """The voices this provider offers."""
        ...


@dataclass(frozen=True, slots=True)
class SpokenChunk:
    """Audio from a ``TtsInputStream`` and the part of the turn's text it speaks.

    ``text_start``/``text_end`` are character offsets into the concatenation of every
    ``send`` of the stream: exact where the provider reports alignment (ElevenLabs) or where
    flush boundaries delimit it (Deepgram: audio before a ``Flushed`` speaks the text of
    that flush); otherwise the span of the text not yet known to be spoken.
    """

    pcm: bytes  # PCM16 LE mono at the stream's sample_rate
    text_start: int
    text_end: int


class TtsInputStream(Protocol):
    """One turn of input-streaming synthesis: text goes in as it is written, audio comes out.

    Lifecycle: ``send`` any number of times, ``flush`` at sentence boundaries (audio for all
    text sent so far, without waiting for more), ``finish`` once the answer is complete;
    iterating yields ``SpokenChunk``s and ends after the audio of finished text. On an
    interruption ``clear`` drops everything not yet spoken and ends the iteration at once.
    ``aclose`` always, last: it closes the connection (idempotent).
    """

    sample_rate: int

    async def send(self, text: str) -> None:
        """Add ``text`` (a delta of the answer) to what is to be spoken."""
        ...

    async def flush(self) -> None:
        """Have everything sent so far spoken now, without waiting for more text."""
        ...

    async def finish(self) -> None:
        """No more text this turn: speak the rest; the iteration then ends."""
        ...

    async def clear(self) -> None:
        """Interrupt: discard unspoken text and audio; the iteration ends at once."""
        ...

    async def aclose(self) -> None:
        """Close the connection to the provider."""
        ...

    def __aiter__(self) -> AsyncIterator[SpokenChunk]:
        """The audio, in order, until finished or cleared."""
        ...


@runtime_checkable
class StreamingTtsProvider(TtsProvider, Protocol):
    """A provider that also takes text incrementally, one ``TtsInputStream`` per turn."""

    async def open_stream(
        self,
        voice: str | None,
        *,
        model: str | None = None,
        speed: float | None = None,
        sample_rate: int = 24_000,
    ) -> TtsInputStream:
        """Connect for one turn. ``sample_rate`` is the rate wanted; the stream's own
        ``sample_rate`` is the closest the provider offers (resample from that)."""
        ...
