"""Session workers on the real embedded NATS: assignment through the queue group, refusals,
failing sessions, the end of a session, heartbeats."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest
from nats.errors import NoRespondersError

from parley_common.bus import Bus, MessageMeta, Received
from parley_common.contracts import subjects
from parley_common.contracts.bus import (
    AssignAck,
    SessionAssign,
    SessionEnd,
    TextInput,
    WorkerHeartbeat,
)
from parley_common.contracts.session import SessionConfig
from parley_common.contracts.subjects import SessionChannel
from parley_common.errors import ProviderUnavailableError
from parley_common.testing import eventually
from parley_common.workers import SessionFactory, SessionWork, SessionWorker


class Work:
    """A session's work that runs until told to fail or cancelled, and says which."""

    def __init__(self, sid: str) -> None:
        self.sid = sid
        self.started = asyncio.Event()
        self.fail = asyncio.Event()
        self.cancelled = False
        self.turn_in_progress = False

    def busy(self) -> bool:
        return self.turn_in_progress

    async def run(self) -> None:
        self.started.set()
        try:
            await self.fail.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        raise RuntimeError(f"session {self.sid} broke")


class Factory:
    """Makes a ``Work`` per assigned session and keeps them by session id."""

    def __init__(self) -> None:
        self.works: dict[str, Work] = {}

    async def __call__(self, assign: SessionAssign) -> SessionWork:
        work = self.works[assign.session_id] = Work(assign.session_id)
        return work


@pytest.fixture
def service() -> str:
    """A service name of this test alone, so no other worker on the shared NATS answers."""
    return f"svc-{uuid.uuid4().hex[:8]}"


@contextlib.asynccontextmanager
async def running(
    nats_url: str, service: str, worker_id: str, factory: SessionFactory
) -> AsyncIterator[tuple[SessionWorker, Bus]]:
    """A worker on its own connection, serving from its first heartbeat on; afterwards it
    must stop by cancellation, not by a crash."""
    bus = await Bus.connect(nats_url, name=worker_id)
    worker = SessionWorker(service, worker_id, bus, factory)
    first_beat = asyncio.Event()

    async def on_beat(msg: Received) -> None:
        if WorkerHeartbeat.model_validate_json(msg.data).worker_id == worker_id:
            first_beat.set()

    beats = await bus.subscribe(subjects.heartbeat(service), on_beat)
    task = asyncio.create_task(worker.run())
    try:
        # The first beat follows the assign subscription: from here on, requests reach it.
        await asyncio.wait_for(first_beat.wait(), 5)
        await beats.unsubscribe()
        yield worker, bus
        assert not task.done(), "the worker stopped on its own"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await bus.close()


async def assign(bus: Bus, service: str, sid: str) -> AssignAck:
    request = SessionAssign(session_id=sid, user_id="user-1", config=SessionConfig())
    reply = await bus.request(subjects.assign(service), request, MessageMeta(session_id=sid))
    return AssignAck.model_validate_json(reply.data)


async def hold(bus: Bus, service: str, factory: Factory, *sids: str) -> None:
    """Assign ``sids`` and wait until the work of each has started."""
    for sid in sids:
        assert (await assign(bus, service, sid)).ok
    for sid in sids:
        await asyncio.wait_for(factory.works[sid].started.wait(), 5)


async def end(bus: Bus, sid: str) -> None:
    control = subjects.session(sid, SessionChannel.CONTROL)
    await bus.publish(control, SessionEnd(), MessageMeta(session_id=sid))


async def test_each_assignment_goes_to_one_worker_of_the_queue_group(
    bus: Bus, nats_url: str, service: str
) -> None:
    factories = {"w-a": Factory(), "w-b": Factory()}
    async with (
        running(nats_url, service, "w-a", factories["w-a"]) as (a, _),
        running(nats_url, service, "w-b", factories["w-b"]) as (b, _),
    ):
        sids = [f"s-{i}" for i in range(20)]
        acks = [await assign(bus, service, sid) for sid in sids]

        assert all(ack.ok and ack.error is None for ack in acks)
        assert [ack.session_id for ack in acks] == sids
        held = {"w-a": set(a.sessions), "w-b": set(b.sessions)}
        for ack in acks:  # the worker that answered is the one that holds it, alone
            assert ack.session_id in held[ack.worker_id]
        assert held["w-a"].isdisjoint(held["w-b"])
        assert held["w-a"] | held["w-b"] == set(sids)
        assert held["w-a"], "the queue group never chose w-a"
        assert held["w-b"], "the queue group never chose w-b"
        for name, factory in factories.items():
            assert set(factory.works) == held[name]
            for work in factory.works.values():
                await asyncio.wait_for(work.started.wait(), 5)


async def test_assigning_a_held_session_again_keeps_its_one_task(
    bus: Bus, nats_url: str, service: str
) -> None:
    factory = Factory()
    async with running(nats_url, service, "w-1", factory) as (worker, _):
        await assign(bus, service, "s-1")
        first = factory.works["s-1"]

        again = await assign(bus, service, "s-1")

        assert again.ok
        assert worker.sessions == ("s-1",)
        assert factory.works["s-1"] is first
        assert not first.cancelled


async def test_a_refused_session_is_nacked_with_a_safe_message(
    bus: Bus, nats_url: str, service: str
) -> None:
    async def refuse(assign: SessionAssign) -> SessionWork:
        if assign.session_id == "s-vendor":
            # A raw exception's text may hold internals: it must never reach the gateway.
            raise RuntimeError("connect to 10.0.0.7:5432 failed: password=hunter2")
        raise ProviderUnavailableError("no API key: set DEEPGRAM_API_KEY")

    async with running(nats_url, service, "w-1", refuse) as (worker, _):
        leaked = await assign(bus, service, "s-vendor")
        explained = await assign(bus, service, "s-domain")

        assert (leaked.ok, leaked.worker_id, leaked.session_id) == (False, "w-1", "s-vendor")
        assert leaked.error == "session refused"
        assert (explained.ok, explained.error) == (False, "no API key: set DEEPGRAM_API_KEY")
        assert worker.sessions == ()


async def test_a_failing_session_takes_down_neither_the_worker_nor_other_sessions(
    bus: Bus, nats_url: str, service: str
) -> None:
    factory = Factory()
    async with running(nats_url, service, "w-1", factory) as (worker, _):
        await hold(bus, service, factory, "s-bad", "s-good")
        good = factory.works["s-good"]

        factory.works["s-bad"].fail.set()
        await eventually(lambda: worker.sessions == ("s-good",), 5)

        assert not good.cancelled
        await hold(bus, service, factory, "s-later")
        assert set(worker.sessions) == {"s-good", "s-later"}
        # The failed session's id is free again: a new assignment starts a new task.
        failed = factory.works["s-bad"]
        await hold(bus, service, factory, "s-bad")
        assert factory.works["s-bad"] is not failed
        assert set(worker.sessions) == {"s-good", "s-later", "s-bad"}


async def test_session_end_ends_the_task_and_the_control_subscription(
    bus: Bus, nats_url: str, service: str
) -> None:
    factory = Factory()
    async with running(nats_url, service, "w-1", factory) as (worker, worker_bus):
        await hold(bus, service, factory, "s-1", "s-2")
        work = factory.works["s-1"]
        control = subjects.session("s-1", SessionChannel.CONTROL)

        # Other control messages are the session's business, not the worker's.
        await bus.publish(control, TextInput(text="hello"), MessageMeta(session_id="s-1"))
        await end(bus, "s-2")
        await eventually(lambda: worker.sessions == ("s-1",), 5)
        assert not work.cancelled

        await end(bus, "s-1")
        await eventually(lambda: worker.sessions == (), 5)
        assert work.cancelled

        # Nothing listens on the ended session's control subject any more: what is published
        # there no longer reaches the worker's connection.
        await worker_bus.nc.flush()
        received = worker_bus.nc.stats["in_msgs"]
        for _ in range(3):
            await bus.publish(control, SessionEnd(), MessageMeta(session_id="s-1"))
        await bus.nc.flush()
        await worker_bus.nc.flush()
        assert worker_bus.nc.stats["in_msgs"] == received


async def test_heartbeats_list_the_sessions_held(bus: Bus, nats_url: str, service: str) -> None:
    beats: list[WorkerHeartbeat] = []

    async def on_beat(msg: Received) -> None:
        beats.append(WorkerHeartbeat.model_validate_json(msg.data))

    sub = await bus.subscribe(subjects.heartbeat(service), on_beat)
    try:
        async with running(nats_url, service, "w-1", Factory()):
            await assign(bus, service, "s-1")
            await assign(bus, service, "s-2")
            await eventually(lambda: bool(beats) and set(beats[-1].sessions) == {"s-1", "s-2"}, 5)
            await end(bus, "s-1")
            await eventually(lambda: beats[-1].sessions == ("s-2",), 5)
    finally:
        await sub.unsubscribe()

    assert {(b.service, b.worker_id) for b in beats} == {(service, "w-1")}
    assert beats[0].sessions == ()


async def test_a_stopping_worker_finishes_the_turn_takes_nothing_new_and_hands_over(
    bus: Bus, nats_url: str, service: str
) -> None:
    factory = Factory()
    worker_bus = await Bus.connect(nats_url, name="draining")
    worker = SessionWorker(service, "draining", worker_bus, factory)
    stopping = asyncio.Event()
    beats: list[WorkerHeartbeat] = []

    async def on_beat(msg: Received) -> None:
        beats.append(WorkerHeartbeat.model_validate_json(msg.data))

    sub = await bus.subscribe(subjects.heartbeat(service), on_beat)
    task = asyncio.create_task(worker.run(stopping, drain_s=5.0))
    try:
        await eventually(lambda: bool(beats), 5)
        await hold(bus, service, factory, "s-busy", "s-idle")
        factory.works["s-busy"].turn_in_progress = True
        stopping.set()
        await eventually(lambda: any(b.draining for b in beats), 5)
        # No new session reaches a draining worker (no one else serves this service).
        with pytest.raises(NoRespondersError):
            await assign(bus, service, "s-new")
        await asyncio.sleep(0.3)
        assert not task.done(), "it left before the turn was over"
        assert not factory.works["s-busy"].cancelled
        factory.works["s-busy"].turn_in_progress = False
        await asyncio.wait_for(task, 5)
        assert factory.works["s-busy"].cancelled
        assert factory.works["s-idle"].cancelled
        await eventually(lambda: any(b.leaving for b in beats), 5)
        last = next(b for b in beats if b.leaving)
        assert sorted(last.sessions) == ["s-busy", "s-idle"]
    finally:
        task.cancel()
        await sub.unsubscribe()
        await worker_bus.close()


async def test_a_drain_stops_a_turn_that_outlasts_it(bus: Bus, nats_url: str, service: str) -> None:
    factory = Factory()
    worker_bus = await Bus.connect(nats_url, name="draining-short")
    worker = SessionWorker(service, "draining-short", worker_bus, factory)
    stopping = asyncio.Event()
    task = asyncio.create_task(worker.run(stopping, drain_s=0.3))
    try:
        await eventually(lambda: bool(worker.sessions) or True, 1)
        await asyncio.sleep(0.2)
        await hold(bus, service, factory, "s-long")
        factory.works["s-long"].turn_in_progress = True
        stopping.set()
        await asyncio.wait_for(task, 3)
        assert factory.works["s-long"].cancelled
    finally:
        task.cancel()
        await worker_bus.close()


async def test_a_worker_is_ready_only_while_it_takes_sessions(
    bus: Bus, nats_url: str, service: str
) -> None:
    worker_bus = await Bus.connect(nats_url, name="readiness")
    worker = SessionWorker(service, "readiness", worker_bus, Factory())
    assert not await worker.ready()  # still loading its models: alive, not ready
    stopping = asyncio.Event()
    task = asyncio.create_task(worker.run(stopping, drain_s=1.0))
    try:
        await eventually(worker.ready, 5)
        assert (await assign(bus, service, "s-ready")).ok
        stopping.set()
        await asyncio.wait_for(task, 5)
        assert not await worker.ready()  # draining and gone
    finally:
        task.cancel()
        await worker_bus.close()
