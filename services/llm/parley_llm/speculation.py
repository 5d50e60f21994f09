"""An answer started on a speculative transcript (the user has fallen silent, the turn has
not ended): it streams at once, so the TTS makes its first audio and the gateway holds it,
but everything that would count it (usage, latency, metrics) waits for the turn to commit,
and the conversation memory holds its rows back (``ConversationMemory.speculate``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Effect = Callable[[], Awaitable[None]]


@dataclass(slots=True)
class Speculation:
    """One session's speculative answer: at most one at a time."""

    turn_id: int
    text: str  # the words it answers: the final must say the same to commit it
    revision: int  # the memory's when it started: a later change makes its prompt stale
    stt_ms: float | None = None  # the committing final's end-of-turn-to-final time
    committed: bool = False
    cancelled: bool = False
    _deferred: list[Effect] = field(default_factory=list)

    @property
    def pending(self) -> bool:
        """Neither committed nor cancelled yet."""
        return not (self.committed or self.cancelled)

    def defer(self, effect: Effect) -> None:
        """Run ``effect`` when the turn commits (never, if it is cancelled)."""
        if not self.cancelled:
            self._deferred.append(effect)

    async def commit(self, stt_ms: float | None) -> None:
        """The turn is the user's: what was deferred happens now, in order."""
        self.committed, self.stt_ms = True, stt_ms
        deferred, self._deferred = self._deferred, []
        for effect in deferred:
            await effect()

    def cancel(self) -> None:
        """The user went on: nothing deferred will happen."""
        self.cancelled = True
        self._deferred.clear()
