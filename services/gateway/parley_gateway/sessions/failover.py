"""Moves sessions off workers that died or left.

Workers send heartbeats listing the sessions they hold. When one falls silent, or says in
its last beat that it is leaving (a drain), each active session it held that is connected
to this gateway is assigned again through the service's queue group; the new worker picks
the conversation up from PostgreSQL. Only the gateway
holding a session's connection reassigns it, so several gateways never race for one session.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Container
from dataclasses import dataclass

from parley_common.bus import Bus, Received
from parley_common.contracts import subjects
from parley_common.contracts.bus import WorkerHeartbeat
from parley_common.contracts.session import SessionStatus
from parley_common.errors import ParleyError
from parley_common.workers import HEARTBEAT_INTERVAL_S
from parley_gateway.sessions.lifecycle import STREAMING_SERVICES, SessionLifecycle

log = logging.getLogger(__name__)

SILENT_AFTER_S = 3 * HEARTBEAT_INTERVAL_S


@dataclass
class _Seen:
    service: str
    sessions: tuple[str, ...]
    at: float


@dataclass(frozen=True)
class LiveWorker:
    """A worker heard from recently, as its last heartbeat describes it."""

    service: str
    worker_id: str
    sessions: int  # the sessions it holds: its load
    last_seen_s: float  # since its last heartbeat


class WorkerMonitor:
    """Tracks worker heartbeats and reassigns the sessions of silent workers."""

    def __init__(
        self,
        bus: Bus,
        lifecycle: SessionLifecycle,
        connected: Container[str],
        silent_after_s: float = SILENT_AFTER_S,
    ) -> None:
        self.bus = bus
        self.lifecycle = lifecycle
        self.connected = connected
        self.silent_after_s = silent_after_s
        self._workers: dict[str, _Seen] = {}

    async def run(self) -> None:
        """Watch until cancelled."""
        subs = [
            await self.bus.subscribe(subjects.heartbeat(s), self._on_heartbeat)
            for s in STREAMING_SERVICES
        ]
        try:
            while True:
                await asyncio.sleep(HEARTBEAT_INTERVAL_S)
                await self._check(time.monotonic())
        finally:
            for sub in subs:
                await sub.unsubscribe()

    def live_workers(self) -> list[LiveWorker]:
        """The workers heard from within ``silent_after_s``, by service and id."""
        now = time.monotonic()
        live = [
            LiveWorker(seen.service, worker_id, len(seen.sessions), now - seen.at)
            for worker_id, seen in self._workers.items()
            if now - seen.at <= self.silent_after_s
        ]
        return sorted(live, key=lambda w: (w.service, w.worker_id))

    async def _on_heartbeat(self, msg: Received) -> None:
        beat = WorkerHeartbeat.model_validate_json(msg.data)
        if beat.leaving:
            # A draining worker stopped its sessions: move them now, not after a silence.
            self._workers.pop(beat.worker_id, None)
            log.info(
                "worker left", extra={"worker_id": beat.worker_id, "sessions": len(beat.sessions)}
            )
            for sid in beat.sessions:
                if sid in self.connected:
                    await self._reassign(beat.service, sid)
            return
        self._workers[beat.worker_id] = _Seen(beat.service, beat.sessions, time.monotonic())

    async def _check(self, now: float) -> None:
        silent = [w for w, seen in self._workers.items() if now - seen.at > self.silent_after_s]
        for worker_id in silent:
            seen = self._workers.pop(worker_id)
            log.warning(
                "worker went silent", extra={"worker_id": worker_id, "sessions": len(seen.sessions)}
            )
            for sid in seen.sessions:
                if sid in self.connected:
                    await self._reassign(seen.service, sid)

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
