"""An ordered write-behind queue: callers hand over work and go on; one task applies it in
order, retrying failures, and flushes what is left (bounded in time) when it is cancelled.

What goes through one: durable events on their way to JetStream (an ack must never delay
audio), and a conversation's rows on their way to PostgreSQL (an interrupt must never wait
for the database). A failure of a kind the owner calls transient (the database cannot be
reached) is retried, with backoff, for as long as it lasts: the queue waits, in order, up to
``max_pending`` items. Work lost after the retries of any other failure, beyond
``max_pending``, or at a flush that ran out of time, is counted and logged, never silent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from prometheus_client import Counter

from parley_common.cancellation import raise_if_cancelling

log = logging.getLogger(__name__)

LOST = Counter(
    "parley_write_behind_lost_total",
    "Queued writes given up after retries or at shutdown",
    ["queue"],
)

T = TypeVar("T")


class WriteBehind(Generic[T]):
    """Applies queued items with ``apply`` in order; ``put`` never waits, ``run`` is the
    task that owns the work."""

    def __init__(
        self,
        name: str,
        apply: Callable[[T], Awaitable[None]],
        *,
        retries: int = 3,
        retry_delay_s: float = 0.2,
        flush_timeout_s: float = 3.0,
        transient: tuple[type[Exception], ...] = (),
        max_retry_delay_s: float = 5.0,
        max_pending: int | None = None,
    ) -> None:
        self.name = name
        self.apply = apply
        self.retries = retries
        self.retry_delay_s = retry_delay_s
        self.flush_timeout_s = flush_timeout_s
        # Failures retried until they pass (doubling the delay up to max_retry_delay_s),
        # not counted against ``retries``: an outage must not turn into lost writes.
        self.transient = transient
        self.max_retry_delay_s = max_retry_delay_s
        self.max_pending = max_pending
        self._queue: asyncio.Queue[T] = asyncio.Queue()
        self._inflight: T | None = None  # applied again by the flush if cut off

    def put(self, item: T) -> None:
        """Queue ``item``; returns at once. Beyond ``max_pending`` it is dropped and counted
        lost: the memory an outage can take is bounded."""
        if self.max_pending is not None and self.pending >= self.max_pending:
            LOST.labels(self.name).inc()
            log.error("write queue full; write lost", extra={"queue": self.name})
            return
        self._queue.put_nowait(item)

    @property
    def pending(self) -> int:
        """Items queued or being applied."""
        return self._queue.qsize() + (self._inflight is not None)

    async def run(self) -> None:
        """Apply queued items until cancelled, then flush what is left."""
        try:
            while True:
                self._inflight = await self._queue.get()
                await self._apply(self._inflight)
                self._inflight = None
                raise_if_cancelling()
        finally:
            await self._flush()

    async def _flush(self) -> None:
        try:
            async with asyncio.timeout(self.flush_timeout_s):
                # Held as in flight while applied, so that a flush cut short counts it lost.
                while self._inflight is not None or not self._queue.empty():
                    if self._inflight is None:
                        self._inflight = self._queue.get_nowait()
                    await self._apply(self._inflight)
                    self._inflight = None
        except TimeoutError:
            LOST.labels(self.name).inc(self.pending)
            log.error("writes not flushed", extra={"queue": self.name, "count": self.pending})

    async def _apply(self, item: T) -> None:
        attempt = 0  # failures other than transient ones
        delay = self.retry_delay_s  # before the next retry of a transient one
        warned = False
        while True:
            try:
                await self.apply(item)
                return
            except asyncio.CancelledError:
                raise
            except self.transient as exc:
                if not warned:  # once per outage, not once per retry
                    warned = True
                    log.warning(
                        "write failed; retrying until it passes",
                        extra={"queue": self.name, "error": repr(exc), "pending": self.pending},
                    )
                await asyncio.sleep(delay)
                # Doubled (from at least 50 ms, so that a zero delay backs off too), capped.
                delay = min(max(delay, 0.05) * 2, self.max_retry_delay_s)
            except Exception as exc:
                attempt += 1
                if attempt >= self.retries:
                    LOST.labels(self.name).inc()
                    log.error("write lost", extra={"queue": self.name, "error": repr(exc)})
                    return
                log.warning(
                    "write failed; retrying", extra={"queue": self.name, "error": repr(exc)}
                )
                await asyncio.sleep(self.retry_delay_s * attempt)
