"""`parley status` from another terminal: the state file, each /health, the workers'
heartbeats on a real NATS and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from parley_common.bus import Bus, MessageMeta
from parley_common.contracts import subjects
from parley_common.contracts.bus import WorkerHeartbeat
from parley_common.observability.health import health_app
from parley_common.testing import serving
from parley_launcher.console import Console
from parley_launcher.embedded.process import free_port
from parley_launcher.state import Infra, LauncherState, ServiceState, state_path
from parley_launcher.status import collect, render


async def _ok() -> bool:
    return True


async def _fail() -> bool:
    return False


@pytest.fixture(autouse=True)
def _no_nats_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NATS_URL", raising=False)


@contextlib.asynccontextmanager
async def _beating(bus: Bus, held: dict[tuple[str, str], tuple[str, ...]]) -> AsyncIterator[None]:
    """Heartbeats of workers (service, worker id): the sessions each holds."""

    async def beat() -> None:
        while True:
            for (service, worker_id), sessions in held.items():
                payload = WorkerHeartbeat(service=service, worker_id=worker_id, sessions=sessions)
                await bus.publish(subjects.heartbeat(service), payload, MessageMeta(session_id=""))
            await asyncio.sleep(0.2)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _save(data_dir: Path, services: dict[str, ServiceState], nats_url: str, db_url: str) -> None:
    LauncherState(
        os.getpid(),
        str(data_dir),
        nats=Infra(nats_url, pid=111),
        postgres=Infra(db_url, pid=222),
        services=services,
    ).save(state_path(data_dir))


async def test_every_part_healthy_with_the_sessions_workers_hold(
    tmp_path: Path, bus: Bus, nats_url: str, database_url: str
) -> None:
    stt_port, gateway_port = free_port(), free_port()
    services = {
        "stt": ServiceState(port=stt_port, pid=1001, restarts=2),
        "gateway": ServiceState(port=gateway_port, pid=1002),
    }
    _save(tmp_path, services, nats_url, database_url)
    async with (
        serving(health_app("stt", {"nats": _ok}), stt_port),
        serving(health_app("gateway", {"nats": _ok, "postgres": _ok}), gateway_port),
        _beating(bus, {("stt", "stt-1"): ("s1", "s2"), ("llm", "llm-1"): ("s1",)}),
    ):
        report = await collect(tmp_path)
    assert report.running
    assert report.healthy
    by_name = {part.name: part for part in report.parts}
    assert list(by_name) == ["NATS", "PostgreSQL", "stt", "gateway"]
    assert all(part.ok for part in report.parts)
    assert by_name["stt"].sessions == 2
    assert by_name["stt"].restarts == 2
    assert by_name["gateway"].sessions is None  # the gateway holds no worker sessions
    assert report.sessions == 2  # s1 is held by stt and llm: one session

    out = io.StringIO()
    render(report, Console(out))
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"Parley is running · launcher pid {os.getpid()} · up ")
    assert lines[3].split()[:4] == ["stt", "healthy", "port", str(stt_port)]
    assert "pid 1001  restarts 2  sessions 2" in lines[3]
    assert lines[-1] == "Active sessions: 2 (from the workers' heartbeats)"
    assert "\x1b" not in out.getvalue()


async def test_unhealthy_parts_say_what_fails(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    stt_port, dead_port = free_port(), free_port()
    services = {"stt": ServiceState(port=stt_port), "tts": ServiceState(port=dead_port)}
    _save(tmp_path, services, nats_url, f"postgresql://postgres@127.0.0.1:{free_port()}/parley")
    async with serving(health_app("stt", {"nats": _ok, "postgres": _fail}), stt_port):
        report = await collect(tmp_path)
    assert report.running
    assert not report.healthy
    by_name = {part.name: part for part in report.parts}
    assert by_name["NATS"].ok  # no worker beats here, but NATS answered
    assert report.sessions == 0
    assert not by_name["PostgreSQL"].ok
    assert "unreachable" in by_name["PostgreSQL"].detail
    assert (by_name["stt"].ok, by_name["stt"].detail) == (False, "postgres failing")
    assert (by_name["tts"].ok, by_name["tts"].detail) == (False, "not listening")


async def test_a_launcher_that_is_gone_means_not_running(tmp_path: Path) -> None:
    gone = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await gone.wait()
    pid = gone.pid
    LauncherState(pid, str(tmp_path)).save(state_path(tmp_path))
    report = await collect(tmp_path)
    assert not report.running
    assert report.launcher_pid == pid
    out = io.StringIO()
    render(report, Console(out))
    assert f"not running from {tmp_path} (its launcher, pid {pid}, is gone)" in out.getvalue()
    assert not (await collect(tmp_path / "nothing-here")).running


async def test_the_command_prints_json_and_exits_non_zero_when_unhealthy(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    port = free_port()
    _save(tmp_path, {"clone": ServiceState(port=port, pid=7)}, nats_url, database_url)
    parley = str(Path(sys.executable).parent / "parley")
    env = {k: v for k, v in os.environ.items() if k != "NATS_URL"}
    async with serving(health_app("clone", {"nats": _ok}), port):
        proc = await asyncio.create_subprocess_exec(
            parley,
            "status",
            "--json",
            "--data-dir",
            str(tmp_path),
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        stdout, _ = await proc.communicate()
    assert proc.returncode == 0
    report = json.loads(stdout)
    assert report["healthy"] is True
    assert [p["name"] for p in report["parts"]] == ["NATS", "PostgreSQL", "clone"]
    assert report["parts"][2]["port"] == port
    assert report["parts"][2]["detail"] == "healthy"

    proc = await asyncio.create_subprocess_exec(  # the service is gone now
        parley, "status", "--data-dir", str(tmp_path), stdout=asyncio.subprocess.PIPE, env=env
    )
    stdout, _ = await proc.communicate()
    assert proc.returncode == 1
    text = stdout.decode()
    assert "clone       unhealthy  port" in text
    assert "not listening" in text
    assert "\x1b" not in text  # not a terminal: plain text


# `parley up --scale stt=2`: each process's line counts the sessions its own worker holds
# (its worker id ends with its pid), not the whole service's.
async def test_each_process_of_a_scaled_service_shows_its_own_sessions(
    tmp_path: Path, bus: Bus, nats_url: str, database_url: str
) -> None:
    ports = free_port(), free_port()
    services = {
        "stt": ServiceState(port=ports[0], pid=4101),
        "stt-2": ServiceState(port=ports[1], pid=4102),
    }
    _save(tmp_path, services, nats_url, database_url)
    async with (
        serving(health_app("stt", {"nats": _ok}), ports[0]),
        serving(health_app("stt", {"nats": _ok}), ports[1]),
        _beating(
            bus, {("stt", "stt-vm-4101"): ("s1", "s2", "s3"), ("stt", "stt-vm-4102"): ("s4",)}
        ),
    ):
        report = await collect(tmp_path)
    by_name = {part.name: part for part in report.parts}
    assert (by_name["stt"].sessions, by_name["stt-2"].sessions) == (3, 1)
    assert report.sessions == 4
