"""A worker asked by name: a direct assignment reaches it and no other worker, and a ping is
answered with its heartbeat (while it drains, too); once it is gone nobody answers."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from nats.errors import NoRespondersError

from parley_common.bus import Bus, MessageMeta
from parley_common.contracts import subjects
from parley_common.contracts.bus import AssignAck, SessionAssign, WorkerHeartbeat
from parley_common.contracts.session import SessionConfig
from parley_common.testing import eventually, hold_session
from parley_common.workers import SessionWorker


@pytest.fixture
def service() -> str:
    return f"svc-{uuid.uuid4().hex[:8]}"


async def _ping(bus: Bus, service: str, worker_id: str) -> WorkerHeartbeat:
    reply = await bus.request(
        subjects.ping(service, worker_id), b"", MessageMeta(session_id=""), timeout=5
    )
    return WorkerHeartbeat.model_validate_json(reply.data)


async def test_a_direct_assignment_reaches_the_named_worker_only(
    bus: Bus, nats_url: str, service: str
) -> None:
    # Dots in a worker id (a host name) must not split the subject.
    names = ["w-a.host.example", "w-b.host.example"]
    buses = [await Bus.connect(nats_url, name=n) for n in names]
    workers = [
        SessionWorker(service, n, b, hold_session) for n, b in zip(names, buses, strict=True)
    ]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        await eventually(lambda: all(w.accepting for w in workers), 5)
        for i in range(4):
            sid = f"s-{i}"
            request = SessionAssign(session_id=sid, user_id="u", config=SessionConfig())
            reply = await bus.request(
                subjects.assign_to(service, names[1]), request, MessageMeta(session_id=sid)
            )
            assert AssignAck.model_validate_json(reply.data).worker_id == names[1]
        assert workers[0].sessions == ()
        assert sorted(workers[1].sessions) == ["s-0", "s-1", "s-2", "s-3"]
        beat = await _ping(bus, service, names[1])
        assert (beat.worker_id, sorted(beat.sessions)) == (names[1], sorted(workers[1].sessions))
        assert beat.cpu_percent >= 0.0
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for b in buses:
            await b.close()
    with pytest.raises(NoRespondersError):
        await _ping(bus, service, names[1])


async def test_a_draining_worker_still_answers_a_ping(
    bus: Bus, nats_url: str, service: str
) -> None:
    worker_bus = await Bus.connect(nats_url, name="draining-ping")

    class Busy:
        def busy(self) -> bool:
            return True

        async def run(self) -> None:
            await asyncio.Event().wait()

    async def busy_session(assign: SessionAssign) -> Busy:
        return Busy()

    worker = SessionWorker(service, "draining-ping", worker_bus, busy_session)
    stopping = asyncio.Event()
    task = asyncio.create_task(worker.run(stopping, drain_s=10.0))
    try:
        await eventually(lambda: worker.accepting, 5)
        request = SessionAssign(session_id="s-1", user_id="u", config=SessionConfig())
        await bus.request(subjects.assign(service), request, MessageMeta(session_id="s-1"))
        stopping.set()
        await eventually(lambda: not worker.accepting, 5)
        beat = await _ping(bus, service, "draining-ping")
        assert beat.draining
        assert beat.sessions == ("s-1",)
        with pytest.raises(NoRespondersError):
            await bus.request(
                subjects.assign_to(service, "draining-ping"),
                request,
                MessageMeta(session_id="s-1"),
            )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await worker_bus.close()
