"""Two STT workers (the production session code), sessions spread over them by load; one is
killed (its NATS connection gone, as with kill -9) mid-conversation: its session moves to
the other worker and its next spoken turn is answered."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

import asyncpg
from pydantic import SecretStr

from bench.audio import silence, speak
from bench.call import Call
from parley_common.bus import Bus
from parley_common.runtime import Runtime
from parley_common.settings import ServiceSettings
from parley_common.testing import eventually, serving
from parley_common.tokens import AuthSettings
from parley_common.workers import SessionWorker
from parley_gateway.app import create_app
from parley_gateway.sessions.failover import WorkerMonitor
from parley_gateway.settings import GatewaySettings
from parley_launcher.embedded.process import free_port
from parley_stt.session import open_session as open_stt

from .conftest import SCRIPTED

StartWorkers = Callable[[str, asyncpg.Pool], contextlib.AbstractAsyncContextManager[None]]


@contextlib.asynccontextmanager
async def _second_stt(
    nats_url: str, pool: asyncpg.Pool
) -> AsyncIterator[tuple[SessionWorker, Bus]]:
    """A production STT worker on a connection of its own (to be killed)."""
    bus = await Bus.connect(nats_url, name="stt-second")
    settings = ServiceSettings(nats_url=nats_url, database_url=SecretStr("unused"))
    runtime = Runtime("stt", "stt-second", settings, bus, pool, asyncio.Event())
    worker = SessionWorker("stt", "stt-second", bus, open_stt(runtime))
    task = asyncio.create_task(worker.run())
    try:
        yield worker, bus
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await bus.close()


async def _answered(call: Call, question: bytes) -> None:
    """A spoken question on ``call`` gets its answer to the end of its audio."""
    mark = len(call.log)
    await call.say(question + silence(1200), realtime=False)
    await call.wait_for("audio_end", within_s=60, after=mark)


async def test_a_killed_stt_workers_session_goes_on_on_the_other(
    nats_url: str, database_url: str, pool: asyncpg.Pool, start_workers: StartWorkers
) -> None:
    question = await speak("What time is it?")
    port = free_port()
    settings = GatewaySettings(
        nats_url=nats_url, database_url=SecretStr(database_url), http_port=port
    )
    app = create_app(settings, AuthSettings.model_construct())
    async with (
        start_workers(nats_url, pool),
        _second_stt(nats_url, pool) as (second, second_bus),
        serving(app, port) as url,
    ):
        monitor: WorkerMonitor = app.state.worker_monitor
        await eventually(lambda: sum(w.service == "stt" for w in monitor.live_workers()) == 2, 15)
        calls = [await Call.start(url, **SCRIPTED) for _ in range(2)]
        try:
            # Spread by load: one session each.
            assert len(second.sessions) == 1
            [moving] = second.sessions
            moved_call = next(c for c in calls if c.session_id == moving)
            await _answered(moved_call, question)

            killed_at = time.monotonic()
            await second_bus.close()  # the process is gone: no leaving beat, no unsubscribe
            others = monitor.lifecycle.workers

            def moved() -> bool:
                return any(
                    w.service == "stt" and w.worker_id != "stt-second" and moving in w.sessions
                    for w in others.known()
                )

            await eventually(moved, 20)
            print(f"session moved {time.monotonic() - killed_at:.2f} s after the kill")
            await _answered(moved_call, question)
            other_call = next(c for c in calls if c.session_id != moving)
            await _answered(other_call, question)
        finally:
            for call in calls:
                await call.close()
