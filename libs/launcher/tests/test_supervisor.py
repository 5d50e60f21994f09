"""The supervisor restarts crashed services with backoff and stops them cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psutil

from parley_common.testing import eventually
from parley_launcher.logfile import LogWriter
from parley_launcher.supervisor import ServiceExit, ServiceProcess, ServiceSpec, describe_exit


def _env_with_module(tmp_path: Path, name: str, body: str) -> dict[str, str]:
    (tmp_path / f"{name}.py").write_text(body)
    return {**os.environ, "PYTHONPATH": str(tmp_path)}


async def test_a_crashing_service_is_restarted_with_growing_backoff(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    script = (
        "import time\n"
        f"open({str(starts)!r}, 'a').write(f'{{time.monotonic()}}\\n')\n"
        "raise SystemExit(3)\n"
    )
    env = _env_with_module(tmp_path, "crasher", script)
    process = ServiceProcess(ServiceSpec("crasher", "crasher"), env, backoff_start_s=0.05)
    task = asyncio.create_task(process.run())
    try:
        await eventually(lambda: starts.exists() and len(starts.read_text().split()) >= 4, 20)
    finally:
        await process.stop()
        await asyncio.wait_for(task, 5)
    times = [float(t) for t in starts.read_text().split()]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert process.restarts >= 3
    assert gaps[2] > gaps[0]  # 0.05 s, 0.1 s, 0.2 s ...


async def test_stop_terminates_and_does_not_restart(tmp_path: Path) -> None:
    env = _env_with_module(tmp_path, "sleeper", "import time\ntime.sleep(600)\n")
    process = ServiceProcess(ServiceSpec("sleeper", "sleeper"), env, backoff_start_s=0.05)
    task = asyncio.create_task(process.run())
    await eventually(lambda: process.pid is not None, 10)
    pid = process.pid
    assert pid is not None
    started = time.monotonic()
    await process.stop()
    await asyncio.wait_for(task, 5)
    assert time.monotonic() - started < 5
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert process.restarts == 0


def test_exit_reasons_are_human() -> None:
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert describe_exit(2) == "exited with status 2"


class _Recorder:
    """ServiceEvents that keep what they are told."""

    def __init__(self) -> None:
        self.pids: list[int | None] = []
        self.exits: list[ServiceExit] = []

    async def started(self, process: ServiceProcess) -> None:
        self.pids.append(process.pid)

    async def exited(self, process: ServiceProcess, ended: ServiceExit) -> None:
        self.exits.append(ended)


@contextlib.asynccontextmanager
async def _supervised(
    tmp_path: Path, name: str, script: str
) -> AsyncIterator[tuple[ServiceProcess, _Recorder]]:
    """``script`` run as service ``name``, its output in ``tmp_path/logs``, until the block
    ends; the log files are complete after it."""
    writer = LogWriter(tmp_path / "logs")
    events = _Recorder()
    env = _env_with_module(tmp_path, name, script)
    spec = ServiceSpec(name, name)
    process = ServiceProcess(spec, env, backoff_start_s=0.05, sink=writer, events=events)
    task = asyncio.create_task(process.run())
    try:
        yield process, events
    finally:
        await process.stop()
        await asyncio.wait_for(task, 5)
        writer.close()


async def test_output_goes_to_the_log_file_and_a_crash_reports_its_last_error(
    tmp_path: Path,
) -> None:
    script = (
        "import json, sys\n"
        "print(json.dumps({'level': 'info', 'msg': 'service starting'}), flush=True)\n"
        "print('progress on stdout', flush=True)\n"
        "raise RuntimeError('no model file at /models/x')\n"
    )
    async with _supervised(tmp_path, "broken", script) as (_, events):
        await eventually(lambda: len(events.exits) >= 3, 20)
    first = events.exits[0]
    assert first.reason == "exited with status 1"
    assert first.last_error == "RuntimeError: no model file at /models/x"
    assert [e.streak for e in events.exits[:3]] == [1, 2, 3]
    assert [e.restarts for e in events.exits[:3]] == [1, 2, 3]
    assert all(pid is not None for pid in events.pids)
    log = (tmp_path / "logs" / "broken.log").read_text()
    assert log.count('"msg": "service starting"') >= 3
    assert "progress on stdout" in log
    assert "Traceback (most recent call last)" in log  # stderr is captured too


async def test_the_last_error_is_that_of_the_current_process_only(tmp_path: Path) -> None:
    # The first run logs an error and dies; the second is killed without a word.
    marker = tmp_path / "ran-once"
    script = (
        "import json, os, pathlib, time\n"
        f"marker = pathlib.Path({str(marker)!r})\n"
        "if not marker.exists():\n"
        "    marker.touch()\n"
        "    entry = {'level': 'error', 'msg': 'cannot bind', 'error': 'port 9101 in use'}\n"
        "    print(json.dumps(entry))\n"
        "    raise SystemExit(2)\n"
        "time.sleep(600)\n"
    )
    async with _supervised(tmp_path, "flaky", script) as (process, events):
        await eventually(lambda: len(events.pids) == 2 and process.pid is not None, 20)
        os.kill(process.pid or 0, signal.SIGKILL)
        await eventually(lambda: len(events.exits) == 2, 20)
    assert events.exits[0].last_error == "cannot bind: port 9101 in use"
    assert events.exits[0].reason == "exited with status 2"
    assert events.exits[1].reason == "killed by SIGKILL"
    assert events.exits[1].last_error is None


async def test_stop_during_the_backoff_does_not_wait_it_out(tmp_path: Path) -> None:
    env = _env_with_module(tmp_path, "quitter", "raise SystemExit(1)\n")
    events = _Recorder()
    process = ServiceProcess(
        ServiceSpec("quitter", "quitter"), env, backoff_start_s=30, events=events
    )
    task = asyncio.create_task(process.run())
    await eventually(lambda: len(events.exits) == 1, 20)
    started = time.monotonic()
    await process.stop()
    await asyncio.wait_for(task, 5)
    assert time.monotonic() - started < 2
    assert len(events.pids) == 1
