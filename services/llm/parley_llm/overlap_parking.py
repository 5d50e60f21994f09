"""Turns said over the assistant while the gateway judges the overlap (a backchannel, noise,
or a real interruption?): parked rather than answered until its verdict. A dismissal drops
the turn that said the dismissed words, an interruption answers what was parked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from parley_common.backchannels import RecentOverlaps
from parley_common.contracts.bus import OverlapDismissed, OverlapStarted

T = TypeVar("T")


class OverlapParking(Generic[T]):
    """One session's user turns on their way to be answered (``start``), parked while an
    overlap is judged."""

    def __init__(self, start: Callable[[T], None]) -> None:
        self._start = start
        self._overlaps: RecentOverlaps[T] = RecentOverlaps()

    def offer(self, turn: T, text: str) -> None:
        """``turn`` (it says ``text``) is to be answered: now, or after the verdict."""
        if not self._overlaps.hold(turn, text):
            self._start(turn)

    def dismissed_final(self, text: str) -> bool:
        """Whether ``text`` is the final of an overlap already dismissed (not to answer)."""
        return self._overlaps.take(text)

    def judged(self, event: OverlapStarted | OverlapDismissed) -> None:
        """The gateway paused the assistant to judge an overlap, or dismissed it."""
        if isinstance(event, OverlapStarted):
            self._overlaps.judging(self._start)
        else:
            self._overlaps.dismissed(event.text)

    def interrupted(self) -> None:
        """The overlap was a barge-in: what was parked is answered."""
        self._overlaps.released()
