"""Typed metadata of the audio subjects, encoded in NATS headers by one codec.

Audio in (client -> STT): the frame's position in the session's input audio, owned by the
gateway, so that a worker taking the session over continues the same clock, and the
push-to-talk markers that travel in the stream to stay in order with the frames.
Audio out (TTS -> gateway): the sample rate, the reply text span the chunk speaks, and the
end-of-turn marker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = ["INPUT_SAMPLE_RATE", "AudioInMeta", "AudioOutMeta", "PushToTalk"]

INPUT_SAMPLE_RATE = 16_000

_OFFSET = "Parley-Offset"
_PUSH_TO_TALK = "Parley-Push-To-Talk"
_RATE = "Parley-Rate"
_TEXT_START = "Parley-Text-Start"
_TEXT_END = "Parley-Text-End"
_END = "Parley-Audio-End"

PushToTalk = Literal["start", "stop"]


def _int(headers: Mapping[str, str], name: str, default: int | None = None) -> int:
    raw = headers.get(name)
    if raw is None:
        if default is None:
            raise ValueError(f"audio header {name} is missing")
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"audio header {name} is not a whole number: {raw!r}") from None


@dataclass(frozen=True, slots=True)
class AudioInMeta:
    """Metadata of one ``audio.in`` message."""

    #: Samples (16 kHz) of the session's input audio before this message's first sample;
    #: None when the publisher did not say (the receiver then keeps its own count).
    offset: int | None
    #: A push-to-talk marker (empty payload) instead of audio.
    push_to_talk: PushToTalk | None = None

    def headers(self) -> dict[str, str]:
        """The NATS headers carrying this metadata."""
        headers = {} if self.offset is None else {_OFFSET: str(self.offset)}
        if self.push_to_talk is not None:
            headers[_PUSH_TO_TALK] = self.push_to_talk
        return headers

    @classmethod
    def parse(cls, headers: Mapping[str, str]) -> AudioInMeta:
        """Decode; raises ValueError naming a malformed header."""
        action = headers.get(_PUSH_TO_TALK)
        if action not in (None, "start", "stop"):
            raise ValueError(f"unknown push-to-talk action {action!r}")
        offset = _int(headers, _OFFSET) if _OFFSET in headers else None
        return cls(offset=offset, push_to_talk=action)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class AudioOutMeta:
    """Metadata of one ``audio.out`` message."""

    rate: int
    #: The reply text span [text_start, text_end) this chunk speaks.
    text_start: int = 0
    text_end: int = 0
    #: The turn's audio is complete (empty payload).
    end: bool = False

    def headers(self) -> dict[str, str]:
        """The NATS headers carrying this metadata."""
        headers = {_RATE: str(self.rate)}
        if self.end:
            headers[_END] = "1"
        else:
            headers[_TEXT_START] = str(self.text_start)
            headers[_TEXT_END] = str(self.text_end)
        return headers

    @classmethod
    def parse(cls, headers: Mapping[str, str]) -> AudioOutMeta:
        """Decode; raises ValueError naming the header that is missing or malformed."""
        return cls(
            rate=_int(headers, _RATE),
            text_start=_int(headers, _TEXT_START, 0),
            text_end=_int(headers, _TEXT_END, 0),
            end=headers.get(_END) == "1",
        )
