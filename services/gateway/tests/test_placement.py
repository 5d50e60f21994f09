"""Sessions go to the least-loaded worker, and a dead worker's sessions move at once: the
registry on its own, then a gateway with several workers of a service on the real NATS."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
import websockets
from pydantic import SecretStr
from websockets.asyncio.client import ClientConnection

from parley_common.bus import Bus
from parley_common.contracts.bus import WorkerHeartbeat
from parley_common.testing import eventually, hold_session, serving
from parley_common.workers import HEARTBEAT_INTERVAL_S, SessionWorker
from parley_gateway.app import create_app
from parley_gateway.sessions.failover import (
    CHECK_EVERY_S,
    MISSING_FOR_S,
    SILENT_AFTER_S,
    SUSPECT_AFTER_S,
    WorkerMonitor,
)
from parley_gateway.sessions.lifecycle import SessionLifecycle
from parley_gateway.sessions.placement import RESERVED_S, WorkerRegistry
from parley_gateway.sessions.store import SessionStore
from parley_gateway.settings import GatewaySettings
from parley_launcher.embedded.process import free_port


def _beat(worker: str, *sessions: str, cpu: float = 0.0, draining: bool = False) -> WorkerHeartbeat:
    return WorkerHeartbeat(
        service="stt", worker_id=worker, sessions=sessions, cpu_percent=cpu, draining=draining
    )


def test_the_least_loaded_worker_is_chosen_and_a_draining_one_never() -> None:
    registry = WorkerRegistry()
    registry.observe(_beat("a", "s1", "s2"))
    registry.observe(_beat("b", "s3"))
    registry.observe(_beat("c", draining=True))
    assert registry.least_loaded("stt", 5) == "b"
    assert registry.least_loaded("llm", 5) is None


def test_sessions_sent_since_the_last_beat_count_until_a_beat_lists_them() -> None:
    registry = WorkerRegistry()
    registry.observe(_beat("a"))
    registry.observe(_beat("b"))
    picks = []
    for sid in ("s1", "s2", "s3", "s4"):
        chosen = registry.least_loaded("stt", 5)
        assert chosen is not None
        registry.reserve(chosen, sid)
        picks.append(chosen)
    assert Counter(picks) == {"a": 2, "b": 2}
    # A beat that lists a sent session counts it once, not twice.
    a_held = [sid for sid, w in zip(("s1", "s2", "s3", "s4"), picks, strict=True) if w == "a"]
    registry.observe(_beat("a", *a_held))
    assert {w.worker_id: w.load for w in registry.known()} == {"a": 2, "b": 2}
    # A sent session that no beat ever lists stops counting after a while.
    later = time.monotonic() + RESERVED_S + 1
    registry.observe(_beat("b"), now=later)
    assert {w.worker_id: w.load for w in registry.known()} == {"a": 2, "b": 0}


def test_cpu_breaks_ties_but_not_a_difference_in_sessions() -> None:
    registry = WorkerRegistry()
    registry.observe(_beat("hot", cpu=95.0))
    registry.observe(_beat("cool", cpu=10.0))
    assert registry.least_loaded("stt", 5) == "cool"
    registry.observe(_beat("cool", "s1", cpu=10.0))
    assert registry.least_loaded("stt", 5) == "hot"


def test_a_stale_worker_is_not_chosen() -> None:
    registry = WorkerRegistry()
    registry.observe(_beat("old"), now=time.monotonic() - 10)
    assert registry.least_loaded("stt", 1.5) is None


def test_an_unreachable_worker_is_suspect_at_once_until_it_beats_again() -> None:
    registry = WorkerRegistry()
    registry.observe(_beat("a", "s1"))
    now = time.monotonic()
    assert registry.silent(now, SUSPECT_AFTER_S) == []
    registry.unreachable("a")
    assert registry.least_loaded("stt", 5) is None  # not sent a session while in doubt
    # Pinged, not yet given up: it still holds its session for the failover to move.
    assert [(w.worker_id, w.sessions) for w in registry.silent(now, SUSPECT_AFTER_S)] == [
        ("a", ("s1",))
    ]
    registry.observe(_beat("a", "s1", draining=True))  # its answer: draining, not dead
    assert registry.silent(time.monotonic(), SUSPECT_AFTER_S) == []


def test_the_silence_that_moves_sessions_fits_in_two_seconds() -> None:
    # A dead worker beat at most one interval before it died; it is pinged after
    # SUSPECT_AFTER_S (at the next check), found missing again MISSING_FOR_S later (the check
    # after), and its sessions are moved at once.
    assert HEARTBEAT_INTERVAL_S + SUSPECT_AFTER_S + 2 * CHECK_EVERY_S < 2.0
    assert MISSING_FOR_S < CHECK_EVERY_S  # confirmed by the very next check
    assert SILENT_AFTER_S > SUSPECT_AFTER_S  # a slow ping leaves a live worker be


@contextlib.asynccontextmanager
async def _gateway(nats_url: str, database_url: str) -> AsyncIterator[tuple[str, WorkerMonitor]]:
    port = free_port()
    settings = GatewaySettings(
        nats_url=nats_url, database_url=SecretStr(database_url), http_port=port
    )
    app = create_app(settings)
    async with serving(app, port) as url:
        monitor: WorkerMonitor = app.state.worker_monitor
        yield url, monitor


class _Workers:
    """Session workers each on their own NATS connection, so that one can die like a killed
    process (its connection gone) while the others go on."""

    def __init__(self, nats_url: str) -> None:
        self.nats_url = nats_url
        self.workers: dict[str, SessionWorker] = {}
        self._buses: dict[str, Bus] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def start(self, service: str, worker_id: str) -> SessionWorker:
        bus = await Bus.connect(self.nats_url, name=worker_id)
        worker = SessionWorker(service, worker_id, bus, hold_session)
        self.workers[worker_id], self._buses[worker_id] = worker, bus
        self._tasks[worker_id] = asyncio.create_task(worker.run())
        return worker

    async def kill(self, worker_id: str) -> None:
        """Its connection closes first, as when the process is killed: no unsubscribe, no
        leaving beat."""
        await self._buses.pop(worker_id).close()
        task = self._tasks.pop(worker_id)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def stop(self) -> None:
        for worker_id in list(self._tasks):
            await self.kill(worker_id)


@pytest.fixture
async def pool_of_workers(nats_url: str) -> AsyncIterator[_Workers]:
    workers = _Workers(nats_url)
    try:
        yield workers
    finally:
        await workers.stop()


async def _known(monitor: WorkerMonitor, service: str, count: int) -> None:
    """Until the gateway has heard ``count`` workers of ``service``."""
    await eventually(lambda: sum(w.service == service for w in monitor.live_workers()) == count, 15)


async def _start_sessions(url: str, count: int) -> list[str]:
    """Start ``count`` sessions at once; returns their ids."""
    return [s["id"] for s in await _create(url, count)]


async def _create(url: str, count: int) -> list[dict[str, str]]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        responses = await asyncio.gather(
            *(client.post("/api/v1/sessions", json={}) for _ in range(count))
        )
    assert [r.status_code for r in responses] == [201] * count
    return [r.json() for r in responses]


async def _stable_llm_tts(workers: _Workers) -> None:
    for service in ("llm", "tts"):
        await workers.start(service, f"{service}-placement")


async def test_nine_sessions_on_three_workers_are_three_each(
    nats_url: str, database_url: str, pool_of_workers: _Workers
) -> None:
    await _stable_llm_tts(pool_of_workers)
    stt = [await pool_of_workers.start("stt", f"stt-even-{i}") for i in range(3)]
    async with _gateway(nats_url, database_url) as (url, monitor):
        await _known(monitor, "stt", 3)
        await _start_sessions(url, 9)
        assert sorted(len(w.sessions) for w in stt) == [3, 3, 3]


async def test_a_busy_worker_gets_no_new_session_while_another_is_idle(
    nats_url: str, database_url: str, pool_of_workers: _Workers
) -> None:
    await _stable_llm_tts(pool_of_workers)
    busy = await pool_of_workers.start("stt", "stt-busy")
    async with _gateway(nats_url, database_url) as (url, monitor):
        await _known(monitor, "stt", 1)
        await _start_sessions(url, 4)
        idle = await pool_of_workers.start("stt", "stt-idle")
        await _known(monitor, "stt", 2)
        new = await _start_sessions(url, 4)
        # A random queue member would have given the busy worker one of them 15 times in 16.
        assert len(busy.sessions) == 4
        assert sorted(idle.sessions) == sorted(new)


async def _connect(ws_url: str) -> ClientConnection:
    ws = await websockets.connect(ws_url)
    await ws.recv()  # ready: the session's connection is held by this gateway
    return ws


async def test_a_killed_workers_sessions_move_to_the_live_ones_at_once(
    nats_url: str, database_url: str, pool_of_workers: _Workers
) -> None:
    await _stable_llm_tts(pool_of_workers)
    stt = {i: await pool_of_workers.start("stt", f"stt-kill-{i}") for i in range(3)}
    async with _gateway(nats_url, database_url) as (url, monitor):
        await _known(monitor, "stt", 3)
        created = await _create(url, 9)
        sids = [s["id"] for s in created]
        sockets = [await _connect(s["ws_url"]) for s in created]
        try:
            victim = stt.pop(0)
            moving = set(victim.sessions)
            assert len(moving) == 3
            killed_at = time.monotonic()
            await pool_of_workers.kill(victim.worker_id)

            def moved() -> bool:
                held = [sid for w in stt.values() for sid in w.sessions]
                return moving <= set(held)

            await eventually(moved, 15)
            took = time.monotonic() - killed_at
            print(f"sessions of the killed worker moved in {took:.2f} s")
            held = Counter(sid for w in stt.values() for sid in w.sessions)
            assert held == Counter(sids)  # each session on exactly one live worker
            # Spread by load too: 3 + 3 held, 3 moved.
            assert sorted(len(w.sessions) for w in stt.values()) == [4, 5]
        finally:
            for ws in sockets:
                await ws.close()


async def test_one_ping_that_finds_nobody_is_not_enough_two_are(
    bus: Bus, pool: asyncpg.Pool
) -> None:
    lifecycle = SessionLifecycle(SessionStore(pool), bus, assign_timeout_s=2.0)
    monitor = WorkerMonitor(bus, lifecycle, connected=set())
    start = time.monotonic()
    # Nobody is subscribed to this worker's ping subject: as after a kill, or for a moment
    # while a worker moves to another NATS node.
    lifecycle.workers.observe(_beat("stt-ghost", "s1"), now=start - SUSPECT_AFTER_S - 0.1)
    await monitor._check(start)
    assert [w.worker_id for w in lifecycle.workers.known()] == ["stt-ghost"]
    await monitor._check(start + MISSING_FOR_S / 2)  # too soon to be sure
    assert [w.worker_id for w in lifecycle.workers.known()] == ["stt-ghost"]
    await monitor._check(start + CHECK_EVERY_S)
    assert lifecycle.workers.known() == []
