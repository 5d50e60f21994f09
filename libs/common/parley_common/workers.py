"""Sessions on workers: one worker of a service holds a session's streaming state.

When a session starts, the gateway sends ``SessionAssign`` to the least-loaded worker it
knows of (its direct subject), or to the service's queue group when it knows none; the
worker starts a task for the session and answers ``AssignAck``.
The task lives until the session ends (``SessionEnd`` on its control subject), the worker
stops, or the session is assigned again elsewhere. Workers publish heartbeats listing their
sessions (their number is its load) and its CPU, so a gateway can place new sessions by
load and move the sessions of a worker that went silent; a worker also answers a ping on its
direct subject, so a silent one can be told apart from a slow one at once.

Asked to stop (SIGTERM: a deploy, a scale-down), a worker drains: it takes no new session,
lets each held session finish the turn it is in (``SessionWork.busy``) for up to the drain
time, stops them, and says it is leaving, so the gateway hands them to other workers at
once instead of after a silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
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

# Twice a second: a dead worker's sessions are to be moved within 2 s.
HEARTBEAT_INTERVAL_S = 0.5
# How long an assignment's ack may wait for the new session to listen to its subjects.
READY_TIMEOUT_S = 1.0
DRAIN_POLL_S = 0.05


class SessionWork(Protocol):
    """What a service does for one session, until cancelled."""

    async def run(self) -> None:
        """Process the session; return when it is over."""

    def busy(self) -> bool:
        """Whether a turn is in progress (a drain waits for it to finish)."""


SessionFactory = Callable[[SessionAssign], Awaitable[SessionWork]]


class SessionWorker:
    """Answers assignments for ``service`` and owns one task per held session."""

    def __init__(self, service: str, worker_id: str, bus: Bus, factory: SessionFactory) -> None:
        self.service = service
        self.worker_id = worker_id
        self.bus = bus
        self.factory = factory
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._works: dict[str, SessionWork] = {}
        self._control_subs: dict[str, Subscription] = {}
        self._tg: asyncio.TaskGroup | None = None
        self._draining = False
        self._accepting = False
        # The direct and the queue subscriptions answer one at a time, like a single one.
        self._assigning = asyncio.Lock()
        self._cpu_mark = (time.monotonic(), time.process_time())
        self._cpu_percent = 0.0

    @property
    def sessions(self) -> tuple[str, ...]:
        """Ids of the sessions this worker holds now."""
        return tuple(self._tasks)

    @property
    def accepting(self) -> bool:
        """Whether assignments reach this worker: subscribed, and not draining."""
        return self._accepting and not self._draining

    async def ready(self) -> bool:
        """``accepting``, as a health check: a worker loading its models is alive but not
        ready, so nothing (a supervisor, a load balancer, a test) mistakes it for one that
        takes sessions."""
        return self.accepting

    async def run(self, stopping: asyncio.Event | None = None, drain_s: float = 0.0) -> None:
        """Serve assignments until cancelled, or until ``stopping`` is set: then drain for
        at most ``drain_s`` and return."""
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            subs = [
                await self.bus.subscribe(
                    subjects.assign(self.service), self._on_assign, queue=self.service
                ),
                await self.bus.subscribe(
                    subjects.assign_to(self.service, self.worker_id), self._on_assign
                ),
            ]
            # Answered while draining too: a draining worker is slow to beat, not gone.
            pings = await self.bus.subscribe(
                subjects.ping(self.service, self.worker_id), self._on_ping
            )
            await self.bus.flush()  # the subscription is on the server: assignments arrive
            self._accepting = True
            beating = tg.create_task(self._heartbeat_forever())
            try:
                await (stopping or asyncio.Event()).wait()
                await self._unsubscribe(subs)
                await self._drain(drain_s)
            finally:
                beating.cancel()
                await self._unsubscribe([*subs, pings])
                for task in self._tasks.values():
                    task.cancel()

    @staticmethod
    async def _unsubscribe(subs: list[Subscription]) -> None:
        for sub in subs:
            # Already gone when a drain unsubscribed it, or when the connection closed.
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _drain(self, drain_s: float) -> None:
        self._draining = True
        held = self.sessions
        log.info("draining", extra={"sessions": len(held), "drain_s": drain_s})
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(drain_s):
                # busy() is each session's own state, with no event to wait on.
                while self.busy():  # noqa: ASYNC110
                    await asyncio.sleep(DRAIN_POLL_S)
        if self.busy():
            log.warning("drain time over; stopping sessions mid-turn")
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        # Their memory is written as they stop; only then may another worker load it.
        await asyncio.gather(*tasks, return_exceptions=True)
        leaving = WorkerHeartbeat(
            service=self.service, worker_id=self.worker_id, sessions=held, leaving=True
        )
        await self.bus.publish(
            subjects.heartbeat(self.service), leaving, MessageMeta(session_id="")
        )
        await self.bus.flush()
        log.info("drained", extra={"sessions": len(held)})

    def busy(self) -> bool:
        """Whether a held session is in a turn (work that shares its resources waits)."""
        return any(work.busy() for work in self._works.values())

    async def _heartbeat_forever(self) -> None:
        while True:
            await self._heartbeat()
            await asyncio.sleep(HEARTBEAT_INTERVAL_S)

    def _beat(self) -> WorkerHeartbeat:
        now, cpu = time.monotonic(), time.process_time()
        then, cpu_then = self._cpu_mark
        if now - then >= HEARTBEAT_INTERVAL_S / 2:  # a beat right after another keeps the mark
            self._cpu_percent = round(100 * (cpu - cpu_then) / (now - then), 1)
            self._cpu_mark = (now, cpu)
        return WorkerHeartbeat(
            service=self.service,
            worker_id=self.worker_id,
            sessions=self.sessions,
            draining=self._draining,
            cpu_percent=self._cpu_percent,
        )

    async def _heartbeat(self) -> None:
        await self.bus.publish(
            subjects.heartbeat(self.service), self._beat(), MessageMeta(session_id="")
        )

    async def _on_ping(self, msg: Received) -> None:
        if msg.reply:
            await self.bus.respond(msg, self._beat(), MessageMeta(session_id=""))

    async def _on_assign(self, msg: Received) -> None:
        async with self._assigning:
            await self._assign(msg)

    async def _assign(self, msg: Received) -> None:
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
            await self._until_listening(sid, work)
            # Announce the new session at once: were this worker to die before its next
            # periodic beat, the session would otherwise never be moved.
            await self._heartbeat()
        await self.bus.respond(msg, AssignAck(session_id=sid, worker_id=self.worker_id), meta)

    async def _until_listening(self, sid: str, work: SessionWork) -> None:
        """Wait (bounded) until a session that says when it listens (a ``ready`` event) has
        subscribed to its subjects: the ack tells the gateway it may publish at once (S2's
        REST voice chat feeds its audio right after the session starts)."""
        ready = getattr(work, "ready", None)
        task = self._tasks.get(sid)
        if not isinstance(ready, asyncio.Event) or task is None:
            return
        listening = asyncio.ensure_future(ready.wait())
        try:
            await asyncio.wait(
                {listening, task}, timeout=READY_TIMEOUT_S, return_when="FIRST_COMPLETED"
            )
        finally:
            listening.cancel()

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
                    self._works.pop(sid, None)
                    active.set(len(self._tasks))
                    sub = self._control_subs.pop(sid, None)
                    if sub is not None:
                        await sub.unsubscribe()

        self._works[sid] = work
        self._tasks[sid] = self._tg.create_task(_run(), name=f"{self.service}:{sid}")
        active.set(len(self._tasks))
