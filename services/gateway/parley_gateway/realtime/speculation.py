"""The speculative answer, held until its turn commits.

When the user falls silent the dialogue may start answering at once (``UserText`` with
``speculative``) and the TTS speak it; the gateway holds everything of that turn (its reply,
its audio, its status reports) in arrival order. ``TurnCommitted`` plays it through the
bridge's own handlers at once, as if it had just arrived; an interrupt with reason
``speculation`` (the user went on) drops it, and whatever of the turn still comes later, so
the client never sees or hears any of it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable

from parley_common.bus import Received
from parley_common.contracts.bus import (
    Interrupt,
    InterruptReason,
    ReplyDelta,
    ReplyDone,
    TurnCommitted,
    UserText,
)

Handler = Callable[[Received], Awaitable[None]]
ReplyEvent = ReplyDelta | ReplyDone | UserText | TurnCommitted
# Dropped speculative turns remembered, so their late audio is dropped too.
RECENT_DROPPED = 8


class SpeculativeHold:
    """One session's speculative turn (at most one at a time) and what it has sent so far."""

    def __init__(self) -> None:
        self._turn: int | None = None
        self._held: deque[tuple[Handler, Received]] = deque()
        self._dropped: deque[int] = deque(maxlen=RECENT_DROPPED)
        self._passing: Received | None = None  # the held message being played now

    @property
    def holding(self) -> int | None:
        """The speculative turn being held, if any."""
        return self._turn

    @property
    def held_messages(self) -> int:
        """How many messages are held (bounded by the one turn's answer)."""
        return len(self._held)

    async def reply(
        self,
        msg: Received,
        event: ReplyDelta | ReplyDone | UserText | TurnCommitted,
        handler: Handler,
    ) -> bool:
        """A message of the reply subject: True when this module has taken it (held, played,
        or dropped); False when the bridge handles it as usual."""
        if msg is self._passing:
            return False
        turn_id = msg.meta.turn_id
        if isinstance(event, UserText) and event.speculative:
            self._drop()  # at most one: an older one was not committed
            self._turn = turn_id
            self._held.append((handler, msg))
            return True
        if isinstance(event, TurnCommitted):
            if turn_id == self._turn:
                await self._release()
            return True
        return self.held(msg, handler)

    def held(self, msg: Received, handler: Handler) -> bool:
        """Any other message of a turn: True when it belongs to the held (or a dropped)
        speculative turn, and was kept (or discarded) here."""
        if msg is self._passing:
            return False
        turn_id = msg.meta.turn_id
        if turn_id in self._dropped:
            return True
        if turn_id != self._turn:
            return False
        self._held.append((handler, msg))
        return True

    def dropped(self, event: Interrupt) -> bool:
        """An interrupt: True when it drops a speculative turn (nothing of it was heard, so
        the bridge has nothing to cut or report)."""
        if event.reason is not InterruptReason.SPECULATION:
            return False
        if event.turn_id == self._turn:
            self._drop()
        else:
            self._dropped.append(event.turn_id)
        return True

    def _drop(self) -> None:
        if self._turn is not None:
            self._dropped.append(self._turn)
        self._turn = None
        self._held.clear()

    async def _release(self) -> None:
        # What arrives while the held part plays joins the queue, so the order is kept.
        while self._held:
            handler, msg = self._held.popleft()
            self._passing = msg
            try:
                await handler(msg)
            finally:
                self._passing = None
        self._turn = None
