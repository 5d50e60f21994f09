"""Durable events published from a task of their own, and failures told to the user.

A JetStream publish waits for the stream's ack; on the audio or control path that wait would
delay what the user hears. A session hands its durable facts (usage, latency, errors) to a
``DurableReporter`` and goes on; the reporter's task publishes them in order, retries
failures, and flushes what is left when the session ends.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from prometheus_client import Counter
from pydantic import BaseModel

from parley_common.bus import Bus, MessageMeta
from parley_common.cancellation import raise_if_cancelling
from parley_common.contracts import subjects
from parley_common.contracts.bus import ServiceError
from parley_common.contracts.events import ErrorRecorded
from parley_common.contracts.subjects import SessionChannel
from parley_common.errors import ParleyError, safe_message

log = logging.getLogger(__name__)

PUBLISH_FAILURES = Counter(
    "parley_durable_publish_failures_total",
    "Durable events that could not be published to JetStream after retries",
    ["service"],
)
RETRIES = 3
RETRY_DELAY_S = 0.2
FLUSH_TIMEOUT_S = 3.0


@dataclass(frozen=True, slots=True)
class _Pending:
    name: str
    event: BaseModel
    meta: MessageMeta


class DurableReporter:
    """Publishes one session's durable events (``parley.events.<name>``) in order, off the
    caller's path. ``run`` is the task; ``report`` never waits."""

    def __init__(self, bus: Bus, service: str) -> None:
        self.bus = bus
        self.service = service
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._inflight: _Pending | None = None  # published again by the flush if cut off

    def report(self, name: str, event: BaseModel, meta: MessageMeta) -> None:
        """Queue ``event`` for ``parley.events.<name>``; returns at once."""
        self._queue.put_nowait(_Pending(name, event, meta))

    @property
    def pending(self) -> int:
        """Events queued and not yet published."""
        return self._queue.qsize()

    async def run(self) -> None:
        """Publish queued events until cancelled, then flush what is left (bounded)."""
        try:
            while True:
                self._inflight = await self._queue.get()
                await self._publish(self._inflight)
                self._inflight = None
                raise_if_cancelling()
        finally:
            await self._flush()

    async def _flush(self) -> None:
        try:
            async with asyncio.timeout(FLUSH_TIMEOUT_S):
                if self._inflight is not None:
                    await self._publish(self._inflight)
                    self._inflight = None
                while not self._queue.empty():
                    await self._publish(self._queue.get_nowait())
        except TimeoutError:
            lost = self._queue.qsize() + (self._inflight is not None)
            PUBLISH_FAILURES.labels(self.service).inc(lost)
            log.error("durable events not flushed at session end", extra={"count": lost})

    async def _publish(self, item: _Pending) -> None:
        for attempt in range(RETRIES):
            try:
                await self.bus.js_publish(subjects.event(item.name), item.event, item.meta)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if attempt == RETRIES - 1:
                    PUBLISH_FAILURES.labels(self.service).inc()
                    log.error("durable event lost", extra={"event": item.name, "error": repr(exc)})
                    return
                await asyncio.sleep(RETRY_DELAY_S * (attempt + 1))


class FailureReporter:
    """Tells the user and the records about a failure in one session's service: a
    ``ServiceError`` on the session's status subject (the gateway shows it) and, for errors,
    a durable ``error.recorded``. A ParleyError's own message is what the user reads; any
    other exception is logged with its traceback and shown as ``fallback`` only."""

    def __init__(self, bus: Bus, reporter: DurableReporter, session_id: str, service: str) -> None:
        self.bus = bus
        self.reporter = reporter
        self.session_id = session_id
        self.service = service

    async def failed(
        self,
        what: str,
        exc: BaseException,
        *,
        code: str,
        fallback: str,
        provider: str,
        meta: MessageMeta,
    ) -> None:
        """``what`` (e.g. "synthesis") failed with ``exc``; ``code``/``fallback`` are used
        when ``exc`` is not a ParleyError."""
        if isinstance(exc, ParleyError):
            log.warning(f"{what} failed", extra={"code": exc.code, "error": exc.message})
            code = exc.code
        else:
            log.error(f"{what} failed", exc_info=exc)
        await self.tell(code, safe_message(exc, fallback), provider=provider, meta=meta)

    async def tell(
        self,
        code: str,
        message: str,
        *,
        provider: str,
        meta: MessageMeta,
        severity: Literal["error", "warning"] = "error",
    ) -> None:
        """Publish a ``ServiceError`` (and record it durably unless it is a warning)."""
        error = ServiceError(
            service=self.service, code=code, message=message, severity=severity, provider=provider
        )
        status = subjects.session(self.session_id, SessionChannel.STATUS)
        await self.bus.publish(status, error, meta)
        if severity == "error":
            recorded = ErrorRecorded(
                session_id=self.session_id,
                at=datetime.now(UTC),
                service=self.service,
                code=code,
                message=message,
            )
            self.reporter.report("error.recorded", recorded, meta)
