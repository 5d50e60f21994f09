"""What a provider's media stream says, in Parley's terms, and the ``Dialect`` each
provider's wire module implements (``twilio_wire``, ``telnyx_wire``).

Both providers speak JSON text frames with an ``event`` field: ``connected``, ``start``,
``media`` (base64 G.711 at 8 kHz), ``dtmf``, ``mark`` (a name sent after some audio, echoed
when the phone has played it), ``stop``; and take ``media``, ``mark`` and ``clear`` back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from parley_common.audio.g711 import G711Law

PHONE_RATE = 8000  # G.711's sample rate, the only one phone streams carry here


@dataclass(frozen=True)
class StreamStarted:
    """The stream began: which call, how its audio is encoded, its custom parameters."""

    stream_id: str
    call_id: str
    law: G711Law
    parameters: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CallerAudio:
    """G.711 audio from the caller (8 kHz, usually 20 ms)."""

    audio: bytes


@dataclass(frozen=True)
class Keypress:
    """A DTMF digit the caller pressed (0-9, *, #, A-D)."""

    digit: str


@dataclass(frozen=True)
class MarkPlayed:
    """The phone has played the audio sent before the mark ``name``."""

    name: str


@dataclass(frozen=True)
class StreamStopped:
    """The call hung up or the stream was stopped."""


PhoneEvent = StreamStarted | CallerAudio | Keypress | MarkPlayed | StreamStopped


class Dialect(Protocol):
    """One provider's media-stream messages."""

    provider: str

    def parse(self, text: str) -> PhoneEvent | None:
        """The event a text frame carries; None for one with nothing for the call (the
        greeting, other tracks, unknown events); ValueError for a malformed one."""

    def media(self, stream_id: str, audio: bytes) -> str:
        """A frame that plays G.711 ``audio`` to the caller."""

    def mark(self, stream_id: str, name: str) -> str:
        """A frame asking for ``name`` back once the audio sent before it has played."""

    def clear(self, stream_id: str) -> str:
        """A frame that drops every bit of audio not played yet."""
