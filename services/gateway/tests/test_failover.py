"""A worker that dies loses its sessions to a live one, and the conversation goes on."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import websockets
from pydantic import SecretStr

from parley_common.bus import Bus
from parley_common.testing import eventually, hold_session, serving
from parley_common.workers import SessionWorker
from parley_gateway.app import create_app
from parley_gateway.settings import GatewaySettings
from parley_launcher.embedded.process import free_port


@pytest.fixture
async def bus_for_workers(nats_url: str) -> AsyncIterator[Bus]:
    bus = await Bus.connect(nats_url, name="failover-workers")
    yield bus
    await bus.close()


@dataclass
class _Call:
    """A session whose STT is held by ``first``, with its WebSocket open."""

    sid: str
    first: SessionWorker
    tasks: dict[str, asyncio.Task[None]]

    def start(self, worker: SessionWorker) -> None:
        self.tasks[worker.worker_id] = asyncio.create_task(worker.run())


@contextlib.asynccontextmanager
async def _call_on(
    nats_url: str, database_url: str, bus: Bus, first: SessionWorker, stopping: asyncio.Event
) -> AsyncIterator[_Call]:
    """Stable llm/tts workers, ``first`` as the only stt worker (draining on ``stopping``),
    a gateway, and one connected session."""
    stable = [SessionWorker(s, f"{s}-{first.worker_id}", bus, hold_session) for s in ("llm", "tts")]
    tasks = {w.worker_id: asyncio.create_task(w.run()) for w in stable}
    tasks[first.worker_id] = asyncio.create_task(first.run(stopping, drain_s=5.0))
    port = free_port()
    settings = GatewaySettings(
        nats_url=nats_url, database_url=SecretStr(database_url), http_port=port
    )
    try:
        async with serving(create_app(settings), port) as url:
            async with httpx.AsyncClient(base_url=url) as client:
                created = (await client.post("/api/v1/sessions", json={})).json()
            assert first.sessions == (created["id"],)
            async with websockets.connect(created["ws_url"]) as ws:
                assert json.loads(await ws.recv())["type"] == "ready"
                yield _Call(created["id"], first, tasks)
    finally:
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)


async def test_sessions_of_a_silent_worker_move_to_another(
    nats_url: str, database_url: str, bus_for_workers: Bus
) -> None:
    bus = bus_for_workers
    first = SessionWorker("stt", "stt-first", bus, hold_session)
    async with _call_on(nats_url, database_url, bus, first, asyncio.Event()) as call:
        # The STT worker dies; a new one joins the queue group.
        call.tasks.pop("stt-first").cancel()
        second = SessionWorker("stt", "stt-second", bus, hold_session)
        call.start(second)
        await eventually(lambda: call.sid in second.sessions, 10)


async def test_sessions_of_a_draining_worker_move_at_once(
    nats_url: str, database_url: str, bus_for_workers: Bus, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="parley_gateway.sessions.failover")
    bus = bus_for_workers
    first = SessionWorker("stt", "stt-drains", bus, hold_session)
    stopping = asyncio.Event()
    async with _call_on(nats_url, database_url, bus, first, stopping) as call:
        second = SessionWorker("stt", "stt-takes-over", bus, hold_session)
        call.start(second)
        await asyncio.sleep(0.2)  # its assign subscription is up
        stopping.set()
        await eventually(lambda: call.sid in second.sessions, 10)
        await asyncio.wait_for(call.tasks.pop("stt-drains"), 5)
    # Moved because the worker said it was leaving, not because it fell silent.
    said = [r.getMessage() for r in caplog.records]
    assert "worker left" in said
    assert "worker went silent" not in said
