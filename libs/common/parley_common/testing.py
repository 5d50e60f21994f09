"""Helpers for Parley's tests (and for users testing code built on Parley)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

PollCheck = Callable[[], Awaitable[bool]] | Callable[[], bool]


async def eventually(check: PollCheck, within_s: float = 10.0, every_s: float = 0.02) -> None:
    """Wait until ``check()`` is true, polling: for state that has no event to await, such as
    a database row or another process's view. Raises TimeoutError when it stays false."""
    async with asyncio.timeout(within_s):
        while True:
            result = check()
            if result if isinstance(result, bool) else await result:
                return
            await asyncio.sleep(every_s)
