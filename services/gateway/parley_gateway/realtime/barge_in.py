"""When the user's speech interrupts the assistant.

Only the gateway knows what is audible, so it decides: speech that starts while the
assistant's turn is audible interrupts it once it has lasted the sensitivity's minimum (a
cough is not a turn); low sensitivity never interrupts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from parley_common.contracts.session import InterruptSensitivity

Interrupt = Callable[[int, float], Awaitable[None]]  # (turn id, speech onset perf time)


class BargeInPolicy:
    """Confirms barge-ins; at most one confirmation is pending at a time."""

    def __init__(
        self,
        sensitivity: InterruptSensitivity,
        audible_turn: Callable[[], int | None],
        interrupt: Interrupt,
        tg: asyncio.TaskGroup,
    ) -> None:
        self.threshold_ms = sensitivity.barge_in_ms
        self.audible_turn = audible_turn
        self.interrupt = interrupt
        self._tg = tg
        self._pending: asyncio.Task[None] | None = None

    def speech_started(self, onset: float) -> None:
        """The user started speaking at ``onset`` (``perf_counter`` time)."""
        self.cancel()
        turn_id = self.audible_turn()
        if self.threshold_ms is None or turn_id is None:
            return
        self._pending = self._tg.create_task(self._confirm(turn_id, onset, self.threshold_ms))

    def speech_stopped(self) -> None:
        """The user stopped before the minimum: no barge-in."""
        self.cancel()

    def cancel(self) -> None:
        """Forget a pending confirmation."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None

    async def _confirm(self, turn_id: int, onset: float, threshold_ms: int) -> None:
        remaining = threshold_ms / 1000 - (time.perf_counter() - onset)
        if remaining > 0:
            await asyncio.sleep(remaining)
        if self.audible_turn() == turn_id:
            await self.interrupt(turn_id, onset)
