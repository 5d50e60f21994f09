"""What the STT emulators share: what they "hear", and serving a WebSocket session.

A test says what the audio contains, and the emulators reveal its words as the audio
arrives, one word per ``word_s`` seconds of PCM16 16 kHz, so a test knows exactly which words
a given amount of audio yields (and when), whatever the bytes are: word ``i`` spans
``[i * word_s, i * word_s + 0.8 * word_s]``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket, WebSocketDisconnect

from parley_emulators.base import EmulatorState, Fault, Recorded

__all__ = [
    "BYTES_PER_SECOND",
    "ClosedHere",
    "Dropped",
    "SpokenWord",
    "SttEmulatorState",
    "audio_of",
    "record",
    "serve_socket",
    "socket_fault",
    "words_of",
]

BYTES_PER_SECOND = 32_000  # PCM16 mono 16 kHz
_WORD_SHARE = 0.8  # of its slot a word lasts; the rest is the gap before the next


class Dropped(Exception):
    """Raised in a handler after the response began: the server then cuts the TCP connection
    without a close frame or the rest of the body, as a connection dropped mid-stream."""


class ClosedHere(Exception):
    """The emulator closed the WebSocket itself (a close fault, a protocol violation)."""


@dataclass(frozen=True, slots=True)
class SpokenWord:
    """One word of the transcript with its timing (seconds from the start of the stream)."""

    punctuated: str  # as the test wrote it: "Hello,"
    start: float
    end: float

    @property
    def plain(self) -> str:
        """Lower case without punctuation: "hello" (what unformatted transcripts show)."""
        return re.sub(r"[^\w'-]", "", self.punctuated).lower()


@dataclass
class SttEmulatorState(EmulatorState):
    """An emulator's record and faults, plus what its audio says."""

    transcript: str = "Hello there, how are you?"
    word_s: float = 0.25
    language: str = "en"
    confidence: float = 0.92
    # The average log probability a Whisper-style reply gives its segment.
    avg_logprob: float = -0.15

    def words(self) -> list[SpokenWord]:
        """Every word of ``transcript`` on its time slot."""
        return words_of(self.transcript, self.word_s)

    def started_before(self, until_s: float, after_s: float = 0.0) -> list[SpokenWord]:
        """Words whose start lies in ``[after_s, until_s)``: what a final over that audio has."""
        return [w for w in self.words() if after_s <= w.start < until_s]

    def ended_by(self, until_s: float, after_s: float = 0.0) -> list[SpokenWord]:
        """Words starting at or after ``after_s`` and fully heard by ``until_s`` (interims)."""
        return [w for w in self.words() if w.start >= after_s and w.end <= until_s]


def words_of(text: str, word_s: float) -> list[SpokenWord]:
    """``text``'s words laid out one per ``word_s`` seconds."""
    return [
        SpokenWord(punctuated=word, start=i * word_s, end=i * word_s + _WORD_SHARE * word_s)
        for i, word in enumerate(text.split())
    ]


def audio_of(recorded: Recorded) -> bytes:
    """Every audio byte a WebSocket client sent, in order."""
    return b"".join(m for m in recorded.messages if isinstance(m, bytes))


def record(state: EmulatorState, connection: HTTPConnection, body: object = None) -> Recorded:
    """Record an HTTP request or a WebSocket session (method ``WEBSOCKET``) as it arrived."""
    return state.record(
        Recorded(
            method=connection.scope.get("method", "WEBSOCKET"),
            path=connection.url.path,
            headers={k.lower(): v for k, v in connection.headers.items()},
            query=dict(connection.query_params),
            body=body,
        )
    )


async def socket_fault(ws: WebSocket, fault: Fault | None) -> None:
    """Serve a mid-stream WebSocket fault: ``malformed`` sends a text frame that is not JSON,
    ``close`` closes with ``fault.status`` as the code, ``drop`` cuts the connection."""
    if fault is None:
        return
    if fault.kind == "malformed":
        await ws.send_text("{not json")
    elif fault.kind == "close":
        await ws.close(fault.status, "emulated close")
        raise ClosedHere
    elif fault.kind == "drop":
        raise Dropped("connection dropped by a test fault")


async def serve_socket(
    state: EmulatorState, ws: WebSocket, recorded: Recorded, serve: Callable[[], Awaitable[None]]
) -> None:
    """Accept ``ws`` and run ``serve``; whoever ends the session, when it ended is recorded."""
    await ws.accept()
    try:
        await serve()
    except (ClosedHere, WebSocketDisconnect):
        pass  # closed by the emulator, or the client left while it was being answered
    finally:
        state.mark_closed(recorded)
