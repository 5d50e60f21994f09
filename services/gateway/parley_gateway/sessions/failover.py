"""Moves sessions off workers that died or left.

Workers send heartbeats listing the sessions they hold (twice a second). One that misses a
beat and a half is pinged on its own subject: nobody there on two pings in a row (its process
died, and its connection with it; one miss could be a reconnect to another NATS node) means it
is gone, and its sessions are moved at once; a ping that is merely slow leaves it be until it
has been silent for ``silent_after_s`` (a hung worker). A worker that says in its
last beat that it is leaving (a drain) has its sessions moved as it says so. Each active
session it held that is connected to this gateway is assigned again, to the least-loaded
live worker; the new worker picks the conversation up from PostgreSQL. Only the gateway
holding a session's connection reassigns it, so several gateways never race for one session.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Container, Iterable
from dataclasses import dataclass

from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from parley_common.bus import Bus, MessageMeta, Received
from parley_common.contracts import subjects
from parley_common.contracts.bus import WorkerHeartbeat
from parley_common.contracts.session import SessionStatus
from parley_common.errors import ParleyError
from parley_common.workers import HEARTBEAT_INTERVAL_S
from parley_gateway.sessions.lifecycle import STREAMING_SERVICES, SessionLifecycle
from parley_gateway.sessions.placement import KnownWorker

log = logging.getLogger(__name__)

# A beat and a half missed: ask the worker whether it is there.
SUSPECT_AFTER_S = 1.5 * HEARTBEAT_INTERVAL_S
# Gone, even if its connection is open (a hung process).
SILENT_AFTER_S = 6 * HEARTBEAT_INTERVAL_S
CHECK_EVERY_S = HEARTBEAT_INTERVAL_S / 2
PING_TIMEOUT_S = 0.5
# Nobody at its subject on two checks (this far apart at least) is gone: a worker moving to
# another NATS node is missing for a moment, then subscribed again.
MISSING_FOR_S = CHECK_EVERY_S / 2


@dataclass(frozen=True)
class LiveWorker:
    """A worker heard from recently, as its last heartbeat describes it."""

    service: str
    worker_id: str
    sessions: int  # the sessions it holds: its load
    last_seen_s: float  # since its last heartbeat


class WorkerMonitor:
    """Tracks worker heartbeats (into the lifecycle's worker registry, which places new
    sessions by them) and reassigns the sessions of workers that are gone."""

    def __init__(
        self,
        bus: Bus,
        lifecycle: SessionLifecycle,
        connected: Container[str],
        silent_after_s: float = SILENT_AFTER_S,
        suspect_after_s: float = SUSPECT_AFTER_S,
    ) -> None:
        self.bus = bus
        self.lifecycle = lifecycle
        self.connected = connected
        self.silent_after_s = silent_after_s
        self.suspect_after_s = min(suspect_after_s, silent_after_s)
        self.workers = lifecycle.workers

    async def run(self) -> None:
        """Watch until cancelled."""
        subs = [
            await self.bus.subscribe(subjects.heartbeat(s), self._on_heartbeat)
            for s in STREAMING_SERVICES
        ]
        try:
            while True:
                await asyncio.sleep(CHECK_EVERY_S)
                await self._check(time.monotonic())
        finally:
            for sub in subs:
                await sub.unsubscribe()

    def live_workers(self) -> list[LiveWorker]:
        """The workers heard from within ``silent_after_s``, by service and id."""
        now = time.monotonic()
        live = [
            LiveWorker(w.service, w.worker_id, w.load, now - w.seen_at)
            for w in self.workers.known()
            if now - w.seen_at <= self.silent_after_s
        ]
        return sorted(live, key=lambda w: (w.service, w.worker_id))

    async def _on_heartbeat(self, msg: Received) -> None:
        beat = WorkerHeartbeat.model_validate_json(msg.data)
        if beat.leaving:
            # A draining worker stopped its sessions: move them now, not after a silence.
            self.workers.remove(beat.worker_id)
            log.info(
                "worker left", extra={"worker_id": beat.worker_id, "sessions": len(beat.sessions)}
            )
            await self._move(beat.service, beat.sessions)
            return
        self.workers.observe(beat)

    async def _check(self, now: float) -> None:
        suspects = self.workers.silent(now, self.suspect_after_s)
        await asyncio.gather(*(self._settle(worker, now) for worker in suspects))

    async def _settle(self, worker: KnownWorker, now: float) -> None:
        """Move the sessions of ``worker`` if it is gone."""
        if now - worker.seen_at <= self.silent_after_s:
            if await self._answers(worker):
                worker.missing_since = None
                return
            if worker.missing_since is None:
                worker.missing_since = now
            if now - worker.missing_since < MISSING_FOR_S:
                return
        if self.workers.remove(worker.worker_id) is None:  # a beat or a leave came first
            return
        held = {*worker.sessions, *worker.reserved}
        log.warning(
            "worker went silent", extra={"worker_id": worker.worker_id, "sessions": len(held)}
        )
        await self._move(worker.service, held)

    async def _answers(self, worker: KnownWorker) -> bool:
        """Whether the worker is still there: it answers a ping, or its subject is still
        subscribed (the answer is only late: a loaded machine, not a dead process)."""
        subject = subjects.ping(worker.service, worker.worker_id)
        try:
            reply = await self.bus.request(
                subject, b"", MessageMeta(session_id=""), timeout=PING_TIMEOUT_S
            )
        except NoRespondersError:
            return False
        except NatsTimeoutError:
            return True
        self.workers.observe(WorkerHeartbeat.model_validate_json(reply.data))
        return True

    async def _move(self, service: str, sessions: Iterable[str]) -> None:
        mine = [sid for sid in sessions if sid in self.connected]
        await asyncio.gather(*(self._reassign(service, sid) for sid in mine))

    async def _reassign(self, service: str, sid: str) -> None:
        record = await self.lifecycle.store.get(sid)
        if record is None or record.status is not SessionStatus.ACTIVE:
            return
        try:
            worker = await self.lifecycle.assign_service(service, record)
        except ParleyError as exc:
            log.error(
                "session could not be moved",
                extra={"session_id": sid, "service": service, "error": exc.message},
            )
            return
        log.info(
            "session moved", extra={"session_id": sid, "service": service, "worker_id": worker}
        )
