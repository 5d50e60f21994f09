"""Sessions on workers: one worker of a service holds a session's streaming state.

When a session starts, the gateway sends ``SessionAssign`` to the service's queue group; the
NATS queue picks one worker, which starts a task for the session and answers ``AssignAck``.
The task lives until the session ends (``SessionEnd`` on its control subject), the worker
stops, or the session is assigned again elsewhere. Workers publish heartbeats listing their
sessions, so a supervisor can move the sessions of a worker that went silent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from nats.aio.subscription import Subscription

from parley_common.bus import Bus, MessageMeta, Received
from parley_common.contracts import subjects
from parley_common.contracts.bus import (
    AssignAck,
    SessionAssign,
    SessionEnd,
    WorkerHeartbeat,
    control_adapter,
)
from parley_common.contracts.subjects import SessionChannel
from parley_common.errors import safe_message
from parley_common.observability.logging import session_context
from parley_common.observability.metrics import ACTIVE_SESSIONS

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = 1.0


class SessionWork(Protocol):
    """What a service does for one session, until cancelled."""

    async def run(self) -> None:
        """Process the session; return when it is over."""


SessionFactory = Callable[[SessionAssign], Awaitable[SessionWork]]


class SessionWorker:
    """Answers assignments for ``service`` and owns one task per held session."""

    def __init__(self, service: str, worker_id: str, bus: Bus, factory: SessionFactory) -> None:
        self.service = service
        self.worker_id = worker_id
        self.bus = bus
        self.factory = factory
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._control_subs: dict[str, Subscription] = {}
        self._tg: asyncio.TaskGroup | None = None

    @property
    def sessions(self) -> tuple[str, ...]:
        """Ids of the sessions this worker holds now."""
        return tuple(self._tasks)

    async def run(self) -> None:
        """Serve assignments until cancelled."""
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            sub = await self.bus.subscribe(
                subjects.assign(self.service), self._on_assign, queue=self.service
            )
            try:
                await self._heartbeat_forever()
            finally:
                await sub.unsubscribe()
                for task in self._tasks.values():
                    task.cancel()

    async def _heartbeat_forever(self) -> None:
        while True:
            await self._heartbeat()
            await asyncio.sleep(HEARTBEAT_INTERVAL_S)

    async def _heartbeat(self) -> None:
        beat = WorkerHeartbeat(
            service=self.service, worker_id=self.worker_id, sessions=self.sessions
        )
        await self.bus.publish(subjects.heartbeat(self.service), beat, MessageMeta(session_id=""))

    async def _on_assign(self, msg: Received) -> None:
        request = SessionAssign.model_validate_json(msg.data)
        sid = request.session_id
        meta = MessageMeta(session_id=sid)
        ending = self._tasks.get(sid)
        if ending is not None and ending.cancelling():
            # The session ended and is resumed at once: its old task must be gone (its
            # memory written, its subscriptions closed) before a new one starts.
            await asyncio.wait([ending])
        if sid not in self._tasks:
            try:
                work = await self.factory(request)
            except Exception as exc:
                log.exception("session rejected", extra={"session_id": sid})
                error = safe_message(exc, "session refused")
                nack = AssignAck(session_id=sid, worker_id=self.worker_id, ok=False, error=error)
                await self.bus.respond(msg, nack, meta)
                return
            await self._start(sid, work)
            # Announce the new session at once: were this worker to die before its next
            # periodic beat, the session would otherwise never be moved.
            await self._heartbeat()
        await self.bus.respond(msg, AssignAck(session_id=sid, worker_id=self.worker_id), meta)

    async def _start(self, sid: str, work: SessionWork) -> None:
        assert self._tg is not None

        async def _on_control(msg: Received) -> None:
            if isinstance(msg.decode(control_adapter), SessionEnd):
                task = self._tasks.get(sid)
                if task is not None:
                    task.cancel()

        self._control_subs[sid] = await self.bus.subscribe(
            subjects.session(sid, SessionChannel.CONTROL), _on_control
        )
        active = ACTIVE_SESSIONS.labels(self.service)

        async def _run() -> None:
            with session_context(sid):
                try:
                    await work.run()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # A failing session must not take the worker and its other sessions down.
                    log.exception("session task failed")
                finally:
                    self._tasks.pop(sid, None)
                    active.set(len(self._tasks))
                    sub = self._control_subs.pop(sid, None)
                    if sub is not None:
                        await sub.unsubscribe()

        self._tasks[sid] = self._tg.create_task(_run(), name=f"{self.service}:{sid}")
        active.set(len(self._tasks))
