"""The text side of one turn spoken through a provider's input stream (ElevenLabs'
stream-input WebSocket, Deepgram Aura's Speak/Flush): the answer's deltas go to the
provider as they arrive, flushed at each sentence end, instead of one request per sentence.

Deltas can arrive before the stream is open; they wait here and are sent, in order, by
whoever opens it, so the provider always sees the answer's text exactly as written. Its
character offsets are therefore offsets into the reply text, as the gateway expects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from parley_tts.providers.base import TtsInputStream
from parley_tts.sentences import SentenceSplitter


@dataclass
class StreamedText:
    """What of a turn's answer has been written, and what the provider has been sent."""

    splitter: SentenceSplitter = field(default_factory=SentenceSplitter)
    pending: list[str] = field(default_factory=list)
    stream: TtsInputStream | None = None
    flush_wanted: bool = False
    finished: bool = False  # the answer is complete
    characters: int = 0  # sent to the provider
    text: str = ""  # the answer so far, to say it again through a fallback provider
    fallen_back: bool = False  # the provider failed; a fallback says the turn by sentence

    async def add(self, text: str) -> None:
        """A delta of the answer: to the provider now if its stream is open."""
        self.text += text
        ends_sentence = bool(self.splitter.feed(text))
        if self.stream is None:
            self.pending.append(text)
            self.flush_wanted = self.flush_wanted or ends_sentence
            return
        await self.stream.send(text)
        self.characters += len(text)
        if ends_sentence:
            # A complete sentence is spoken now, not when the provider's buffer fills.
            await self.stream.flush()

    async def finish(self) -> None:
        """The answer is complete: the provider speaks the rest."""
        self.finished = True
        if self.stream is not None:
            await self.stream.finish()

    async def attach(self, stream: TtsInputStream) -> None:
        """The stream is open: send what waited, then take deltas directly."""
        while self.pending:
            text = self.pending.pop(0)
            await stream.send(text)
            self.characters += len(text)
        # No await between the last check of ``pending`` and this: no delta slips past.
        self.stream = stream
        if self.flush_wanted:
            await stream.flush()
        if self.finished:
            await stream.finish()
