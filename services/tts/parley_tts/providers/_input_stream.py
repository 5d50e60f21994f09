"""What the input-streaming adapters share: the stream's state, checked at each call, and
the ledger of which part of the turn's text the audio received so far speaks."""

from __future__ import annotations

from collections import deque
from enum import Enum

from parley_common.errors import ConflictError

__all__ = ["StreamState", "TextLedger", "closest_rate", "http_to_ws"]


class StreamState(Enum):
    """OPEN -> FINISHING -> DONE normally; CLEARED on interrupt; CLOSED after aclose."""

    OPEN = "open"  # taking text
    FINISHING = "finishing"  # all text sent; the rest of the audio is coming
    DONE = "done"  # all audio received
    CLEARED = "cleared"  # interrupted: nothing more is spoken
    CLOSED = "closed"

    def require_open(self, what: str) -> None:
        """Raise unless text may still be sent."""
        if self is not StreamState.OPEN:
            raise ConflictError(f"cannot {what} a TTS stream that is {self.value}")

    @property
    def ended(self) -> bool:
        """No more audio will be yielded."""
        return self in (StreamState.DONE, StreamState.CLEARED, StreamState.CLOSED)


class TextLedger:
    """Offsets into the turn's text: how much was sent, flushed, and is known spoken.

    Text is only ever appended, so the offsets are positions in the concatenation of every
    ``send``, which is the reply text the session reports spans of.
    """

    def __init__(self) -> None:
        self.sent = 0
        self.spoken = 0
        self._flushes: deque[int] = deque()  # ends of flushed text not yet confirmed

    def add(self, text: str) -> None:
        """``text`` was sent."""
        self.sent += len(text)

    def flush(self) -> bool:
        """Mark a flush boundary at the text sent so far; False when nothing new to flush."""
        last = self._flushes[-1] if self._flushes else self.spoken
        if self.sent <= last:
            return False
        self._flushes.append(self.sent)
        return True

    def flushed(self) -> None:
        """The provider confirmed the oldest flush: its audio has all arrived."""
        if self._flushes:
            self.spoken = self._flushes.popleft()

    @property
    def pending_flushes(self) -> int:
        """Flushes sent and not yet confirmed."""
        return len(self._flushes)

    def span_of_unconfirmed(self) -> tuple[int, int]:
        """The text the audio arriving now belongs to: from what is known spoken to the end
        of the oldest unconfirmed flush (or of all text sent)."""
        end = self._flushes[0] if self._flushes else self.sent
        return self.spoken, max(self.spoken, end)

    def advance(self, chars: int) -> tuple[int, int]:
        """Audio speaking the next ``chars`` characters arrived (provider alignment)."""
        start = self.spoken
        self.spoken = min(self.sent, start + max(0, chars))
        while self._flushes and self._flushes[0] <= self.spoken:
            self._flushes.popleft()
        return start, self.spoken


def closest_rate(wanted: int, offered: tuple[int, ...]) -> int:
    """The offered sample rate nearest ``wanted``, preferring the higher on a tie."""
    return min(offered, key=lambda rate: (abs(rate - wanted), -rate))


def http_to_ws(url: str) -> str:
    """``http(s)://`` -> ``ws(s)://`` (a provider's REST base URL names its WebSocket host)."""
    if url.startswith("https://"):
        return "wss://" + url[len("https://") :]
    if url.startswith("http://"):
        return "ws://" + url[len("http://") :]
    return url
