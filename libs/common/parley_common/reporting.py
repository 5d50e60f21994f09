"""Durable events published from a task of their own, and failures told to the user.

A JetStream publish waits for the stream's ack; on the audio or control path that wait would
delay what the user hears. A session hands its durable facts (usage, latency, errors) to a
``DurableReporter`` and goes on; the reporter's task publishes them in order, retries
failures, and flushes what is left when the session ends.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel

from parley_common.bus import Bus, MessageMeta
from parley_common.contracts import subjects
from parley_common.contracts.bus import ServiceError
from parley_common.contracts.events import ErrorRecorded
from parley_common.contracts.subjects import SessionChannel
from parley_common.errors import ParleyError, safe_message
from parley_common.observability.metrics import PROVIDER_ERRORS
from parley_common.write_behind import WriteBehind

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Pending:
    name: str
    event: BaseModel
    meta: MessageMeta
    # One id per fact, kept across retries: the stream stores a retried publish once.
    msg_id: str = field(default_factory=lambda: uuid.uuid4().hex)


class DurableReporter:
    """Publishes one session's durable events (``parley.events.<name>``) in order, off the
    caller's path. ``run`` is the task; ``report`` never waits."""

    def __init__(self, bus: Bus, service: str) -> None:
        self.bus = bus
        self.service = service
        self._writes: WriteBehind[_Pending] = WriteBehind(f"{service}-events", self._publish)

    def report(self, name: str, event: BaseModel, meta: MessageMeta) -> None:
        """Queue ``event`` for ``parley.events.<name>``; returns at once."""
        self._writes.put(_Pending(name, event, meta))

    @property
    def pending(self) -> int:
        """Events queued and not yet published."""
        return self._writes.pending

    async def run(self) -> None:
        """Publish queued events until cancelled, then flush what is left (bounded)."""
        await self._writes.run()

    async def _publish(self, item: _Pending) -> None:
        await self.bus.js_publish(
            subjects.event(item.name), item.event, item.meta, msg_id=item.msg_id
        )


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
        PROVIDER_ERRORS.labels(self.service, provider, code).inc()
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
