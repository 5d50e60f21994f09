"""`parley status` with a service scaled out (`parley up --scale stt=2`): each process's line
counts the sessions its own worker holds (its worker id ends with its pid), not the whole
service's."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from parley_common.bus import Bus, MessageMeta
from parley_common.contracts import subjects
from parley_common.contracts.bus import WorkerHeartbeat
from parley_common.observability.health import health_app
from parley_common.testing import serving
from parley_launcher.embedded.process import free_port
from parley_launcher.state import Infra, LauncherState, ServiceState, state_path
from parley_launcher.status import collect


async def _ok() -> bool:
    return True


@contextlib.asynccontextmanager
async def _beating(bus: Bus, held: dict[str, tuple[str, ...]]) -> AsyncIterator[None]:
    """Heartbeats of stt workers named ``<worker id>``: the sessions each holds."""

    async def beat() -> None:
        while True:
            for worker_id, sessions in held.items():
                payload = WorkerHeartbeat(service="stt", worker_id=worker_id, sessions=sessions)
                await bus.publish(subjects.heartbeat("stt"), payload, MessageMeta(session_id=""))
            await asyncio.sleep(0.2)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_each_process_of_a_scaled_service_shows_its_own_sessions(
    tmp_path: Path, bus: Bus, nats_url: str, database_url: str
) -> None:
    ports = free_port(), free_port()
    services = {
        "stt": ServiceState(port=ports[0], pid=4101),
        "stt-2": ServiceState(port=ports[1], pid=4102),
    }
    LauncherState(
        os.getpid(),
        str(tmp_path),
        nats=Infra(nats_url, pid=111),
        postgres=Infra(database_url, pid=222),
        services=services,
    ).save(state_path(tmp_path))
    async with (
        serving(health_app("stt", {"nats": _ok}), ports[0]),
        serving(health_app("stt", {"nats": _ok}), ports[1]),
        _beating(bus, {"stt-vm-4101": ("s1", "s2", "s3"), "stt-vm-4102": ("s4",)}),
    ):
        report = await collect(tmp_path)
    by_name = {part.name: part for part in report.parts}
    assert (by_name["stt"].sessions, by_name["stt-2"].sessions) == (3, 1)
    assert report.sessions == 4
