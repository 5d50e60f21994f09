"""The supervisor restarts crashed services with backoff and stops them cleanly."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import time
from pathlib import Path

import psutil

from parley_common.testing import eventually
from parley_launcher.supervisor import ServiceProcess, ServiceSpec, describe_exit


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
