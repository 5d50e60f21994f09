"""Which worker takes a new session: the least-loaded live one.

A worker's load is the number of sessions it holds, as its last heartbeat lists them, plus
the sessions this gateway has sent it since that beat (a burst of session starts between
two beats must not all land on the worker that was idle at the last one). Its CPU breaks
ties, coarsely, and a draining worker takes nothing. The registry is also the failover's
view of who is alive (``WorkerMonitor``).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from parley_common.contracts.bus import WorkerHeartbeat

# A session sent to a worker counts against it until a heartbeat lists it, or this long:
# a worker announces a new session at once, so only a lost beat leaves one uncounted.
RESERVED_S = 3.0
# CPU differences smaller than this do not decide between equally loaded workers.
CPU_STEP_PERCENT = 25.0


@dataclass
class KnownWorker:
    """What this gateway knows of one worker."""

    service: str
    worker_id: str
    sessions: tuple[str, ...]
    cpu_percent: float
    draining: bool
    seen_at: float  # monotonic time of its last heartbeat (or ping answer)
    # Sessions sent to it since, with when they were sent.
    reserved: dict[str, float] = field(default_factory=dict)
    # A request found nobody at its subject: to be pinged at once (until its next beat).
    suspect: bool = False
    # When a ping first found nobody at its subject (None: answered, or not asked yet).
    missing_since: float | None = None

    @property
    def load(self) -> int:
        """Sessions it holds, counting those sent to it that no beat lists yet."""
        return len(self.sessions) + sum(1 for sid in self.reserved if sid not in self.sessions)


class WorkerRegistry:
    """The workers heard from, with their load; picks the one to take a session."""

    def __init__(self) -> None:
        self._workers: dict[str, KnownWorker] = {}

    def observe(self, beat: WorkerHeartbeat, now: float | None = None) -> None:
        """Take a heartbeat (or a ping's answer) into account."""
        now = time.monotonic() if now is None else now
        known = self._workers.get(beat.worker_id)
        reserved = {} if known is None else known.reserved
        listed = set(beat.sessions)
        reserved = {
            sid: at for sid, at in reserved.items() if sid not in listed and now - at < RESERVED_S
        }
        self._workers[beat.worker_id] = KnownWorker(
            beat.service,
            beat.worker_id,
            beat.sessions,
            beat.cpu_percent,
            beat.draining,
            now,
            reserved,
        )

    def least_loaded(self, service: str, fresh_within_s: float) -> str | None:
        """The id of the live, accepting worker of ``service`` with the least load (None when
        none is known: the caller then asks the queue group)."""
        now = time.monotonic()
        candidates = [
            w
            for w in self._workers.values()
            if w.service == service
            and not (w.draining or w.suspect)
            and now - w.seen_at <= fresh_within_s
        ]
        if not candidates:
            return None
        # Random among equals: several gateways starting sessions at once spread them too.
        best = min(
            candidates, key=lambda w: (w.load, w.cpu_percent // CPU_STEP_PERCENT, random.random())
        )
        return best.worker_id

    def reserve(self, worker_id: str, session_id: str) -> None:
        """Count ``session_id`` against the worker it is being sent to."""
        known = self._workers.get(worker_id)
        if known is not None:
            known.reserved[session_id] = time.monotonic()

    def release(self, worker_id: str, session_id: str) -> None:
        """The worker did not take ``session_id`` after all."""
        known = self._workers.get(worker_id)
        if known is not None:
            known.reserved.pop(session_id, None)

    def unreachable(self, worker_id: str) -> None:
        """A request found nobody at the worker's assign subject: have the next check ping
        it now instead of after a silence (dead, the failover moves its sessions; draining,
        it answers the ping and says so)."""
        known = self._workers.get(worker_id)
        if known is not None:
            known.suspect = True

    def silent(self, now: float, after_s: float) -> list[KnownWorker]:
        """The workers not heard from for more than ``after_s``, or found unreachable."""
        return [w for w in self._workers.values() if w.suspect or now - w.seen_at > after_s]

    def remove(self, worker_id: str) -> KnownWorker | None:
        """Forget a worker (it left or died); returns what was known of it."""
        return self._workers.pop(worker_id, None)

    def known(self) -> list[KnownWorker]:
        """Every worker known, live or not yet found silent."""
        return list(self._workers.values())
