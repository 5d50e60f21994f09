"""Runs each service as its own OS process and restarts the ones that die, with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field

from parley_launcher.embedded.process import die_with_parent

log = logging.getLogger(__name__)

BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 30.0
# A process that stayed up this long is healthy again: its next crash restarts it quickly.
STABLE_AFTER_S = 30.0
STOP_GRACE_S = 10.0


@dataclass(frozen=True)
class ServiceSpec:
    """How to run one service."""

    name: str
    module: str
    env: dict[str, str] = field(default_factory=dict)


def describe_exit(code: int) -> str:
    """Human reason for a process exit status."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


class ServiceProcess:
    """One supervised service: start, watch, restart with backoff, stop."""

    def __init__(
        self, spec: ServiceSpec, base_env: dict[str, str], backoff_start_s: float = BACKOFF_START_S
    ) -> None:
        self.spec = spec
        self.env = {**base_env, **spec.env}
        self.backoff_start_s = backoff_start_s
        self.proc: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self._stopping = False

    @property
    def pid(self) -> int | None:
        """Pid of the running process."""
        return self.proc.pid if self.proc and self.proc.returncode is None else None

    async def _spawn(self) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            self.spec.module,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            preexec_fn=die_with_parent(),
            start_new_session=True,
        )

    async def run(self) -> None:
        """Keep the service running until ``stop``."""
        backoff = self.backoff_start_s
        while not self._stopping:
            started = time.monotonic()
            self.proc = await self._spawn()
            log.info(
                "service started", extra={"child_service": self.spec.name, "pid": self.proc.pid}
            )
            code = await self.proc.wait()
            if self._stopping:
                break
            if time.monotonic() - started >= STABLE_AFTER_S:
                backoff = self.backoff_start_s
            self.restarts += 1
            log.error(
                "service died; restarting",
                extra={
                    "child_service": self.spec.name,
                    "reason": describe_exit(code),
                    "restart_in_s": backoff,
                    "restarts": self.restarts,
                },
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after the grace period."""
        self._stopping = True
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), STOP_GRACE_S)
        except TimeoutError:
            log.warning("service ignored SIGTERM; killing", extra={"child_service": self.spec.name})
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


class Supervisor:
    """Owns every service process."""

    def __init__(self, specs: list[ServiceSpec], base_env: dict[str, str] | None = None) -> None:
        env = dict(os.environ if base_env is None else base_env)
        self.processes = [ServiceProcess(spec, env) for spec in specs]

    async def run(self, stop: asyncio.Event) -> None:
        """Run all services until ``stop`` is set, then stop them all."""
        async with asyncio.TaskGroup() as tg:
            for process in self.processes:
                tg.create_task(process.run())
            await stop.wait()
            await asyncio.gather(*(p.stop() for p in self.processes))
