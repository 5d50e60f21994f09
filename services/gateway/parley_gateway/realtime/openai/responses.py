"""One response: a Parley assistant turn, and the OpenAI events about its output item.

A response has one output item, an assistant message with one content part: audio with its
transcript, or text for a text-only response. The events naming that part are built here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from parley_gateway.realtime.openai import wire
from parley_gateway.realtime.openai.wire import Item, ItemContent, new_id

Modality = Literal["audio", "text"]
Status = Literal["in_progress", "completed", "cancelled", "failed"]
CONVERSATION_ID = "conv_parley"  # one conversation per connection


@dataclass
class Requested:
    """What a ``response.create`` asked of the next response."""

    modality: Modality | None = None
    metadata: dict[str, str] | None = None


@dataclass
class ResponseState:
    """A response under way, or just finished."""

    turn_id: int
    modality: Modality
    metadata: dict[str, str] | None
    requested: bool  # a response.create asked for it (or joined it)
    id: str = ""
    item: Item | None = None  # None: a response with no output
    text: str = ""  # the deltas as streamed: what the TTS speaks, character for character
    final: str | None = None  # the dialogue's final text
    cancel_requested: bool = False

    @classmethod
    def start(
        cls, turn_id: int, requested: Requested, asked: bool, default: Modality
    ) -> ResponseState:
        """A response with its (empty, in progress) output item."""
        modality = requested.modality or default
        part = ItemContent(type="output_audio", transcript="")
        if modality == "text":
            part = ItemContent(type="output_text", text="")
        item = Item(id=new_id("item"), role="assistant", status="in_progress", content=[part])
        return cls(turn_id, modality, requested.metadata, asked, new_id("resp"), item)

    @property
    def item_id(self) -> str:
        """The output item's id."""
        assert self.item is not None
        return self.item.id

    def delta(self, text: str) -> wire.ServerEvent:
        """A piece of the answer's transcript (audio) or text."""
        if self.modality == "audio":
            return wire.OutputTranscriptDelta(response_id=self.id, item_id=self.item_id, delta=text)
        return wire.OutputTextDelta(response_id=self.id, item_id=self.item_id, delta=text)

    def audio(self, audio_b64: str) -> wire.ServerEvent:
        """A chunk of the answer's audio."""
        return wire.OutputAudioDelta(response_id=self.id, item_id=self.item_id, delta=audio_b64)

    def text_done(self, text: str) -> wire.ServerEvent:
        """The answer's whole transcript (audio) or text, which the item now holds."""
        assert self.item is not None
        part = self.item.content[0]
        if self.modality == "audio":
            part.transcript = text
            return wire.OutputTranscriptDone(
                response_id=self.id, item_id=self.item_id, transcript=text
            )
        part.text = text
        return wire.OutputTextDone(response_id=self.id, item_id=self.item_id, text=text)

    def audio_done(self) -> wire.ServerEvent:
        """All of the answer's audio was sent."""
        return wire.OutputAudioDone(response_id=self.id, item_id=self.item_id)

    def part_added(self) -> wire.ServerEvent:
        """The content part begins."""
        return wire.ContentPartAdded(response_id=self.id, item_id=self.item_id, part=self._part(""))

    def part_done(self, text: str) -> wire.ServerEvent:
        """The content part is complete."""
        return wire.ContentPartDone(
            response_id=self.id, item_id=self.item_id, part=self._part(text)
        )

    def view(
        self,
        status: Status,
        usage: wire.Usage | None = None,
        details: wire.StatusDetails | None = None,
    ) -> wire.Response:
        """The response as ``response.created`` / ``response.done`` show it."""
        output = [self.item.model_copy(deep=True)] if self.item is not None else []
        return wire.Response(
            id=self.id,
            status=status,
            status_details=details,
            output=output,
            output_modalities=[self.modality],
            conversation_id=CONVERSATION_ID,
            metadata=self.metadata,
            usage=usage if status != "in_progress" else None,
        )

    def _part(self, text: str) -> wire.Part:
        if self.modality == "audio":
            return wire.Part(type="audio", transcript=text)
        return wire.Part(type="text", text=text)


def usage_of(counts: dict[str, int] | None) -> wire.Usage | None:
    """A response's usage from the token counts reported for its turn."""
    if not counts:
        return None
    into, out = counts.get("input_tokens", 0), counts.get("output_tokens", 0)
    return wire.Usage(total_tokens=into + out, input_tokens=into, output_tokens=out)
