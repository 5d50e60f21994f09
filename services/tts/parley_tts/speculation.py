"""Speculative turns on the TTS: a turn announced with ``UserText.speculative`` is spoken at
once (the gateway holds its audio), but what would count it (its first-byte latency, its
usage) waits for ``TurnCommitted``; an interrupt (reason ``speculation``) drops it unsaid."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

Effect = Callable[[], Awaitable[None]]
# Speculative turns tracked at once; one per session is the rule, a few cover late messages.
MAX_HELD = 4


class HeldReports:
    """Each speculative turn's reports, kept until it commits (sent) or is dropped."""

    def __init__(self) -> None:
        self._held: dict[int, list[Effect]] = {}

    def speculative(self, turn_id: int) -> None:
        """``turn_id`` is not the user's turn yet."""
        self._held.setdefault(turn_id, [])
        while len(self._held) > MAX_HELD:
            self._held.pop(min(self._held))

    async def report(self, turn_id: int, effect: Effect) -> None:
        """Run ``effect`` now, or when the speculative ``turn_id`` commits."""
        held = self._held.get(turn_id)
        if held is None:
            await effect()
        else:
            held.append(effect)

    async def committed(self, turn_id: int) -> None:
        """The turn is the user's: its reports are sent, in order."""
        for effect in self._held.pop(turn_id, []):
            await effect()

    def dropped(self, turn_id: int) -> None:
        """The turn was cut (the user went on, or interrupted): its reports are not sent."""
        self._held.pop(turn_id, None)
