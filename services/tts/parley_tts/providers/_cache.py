"""A value fetched from a provider's API and kept for a while: the voices lists, which every
session start asks for (to check its voice) and which change rarely."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["TtlCache"]

T = TypeVar("T")


class TtlCache(Generic[T]):
    """Calls ``fetch`` at most once per ``ttl_s``; concurrent callers share one fetch, and a
    failed fetch is not kept (the next caller tries again)."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[T]],
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._ttl_s = ttl_s
        self._clock = clock
        self._value: T | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> T:
        """The cached value, fetched again once it is older than the TTL."""
        async with self._lock:
            if self._value is None or self._clock() - self._fetched_at >= self._ttl_s:
                self._value = await self._fetch()
                self._fetched_at = self._clock()
            return self._value

    def invalidate(self) -> None:
        """Forget the value (e.g. after a voice was added)."""
        self._value = None
