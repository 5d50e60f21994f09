"""The optional "are you still there?" prompt: after the session's ``idle_prompt_s`` of
silence following the assistant's turn, the dialogue is asked (``IdlePrompt`` on the
control subject) to say so, as a turn of its own, so that memory and the transcript hold it
like any other answer. At most once per silence: the prompt's own turn does not arm it
again; only the user (speaking or typing) does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

Ask = Callable[[], Awaitable[None]]


class IdlePrompter:
    """Times the user's silence after the assistant; ``ask`` when it lasts ``after_s``."""

    def __init__(self, after_s: float | None, ask: Ask) -> None:
        self.after_s = after_s
        self.ask = ask
        self._timer: asyncio.Task[None] | None = None
        self._asked = False  # asked in this silence: not again until the user is back

    def assistant_done(self) -> None:
        """The assistant's turn has played out: the silence starts now."""
        if self.after_s is None or self._asked:
            return
        self.cancel()
        self._timer = asyncio.create_task(self._wait(self.after_s))

    def user_active(self) -> None:
        """The user spoke or typed: no prompt for this silence, and a later one may ask."""
        self._asked = False
        self.cancel()

    def cancel(self) -> None:
        """Forget a running timer (the connection ends, or the silence did)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def _wait(self, after_s: float) -> None:
        await asyncio.sleep(after_s)
        self._asked = True
        self._timer = None  # asking is not cancelled by the silence it ends
        await self.ask()
