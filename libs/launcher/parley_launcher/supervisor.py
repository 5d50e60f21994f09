"""Runs each service as its own OS process and restarts the ones that die, with backoff.

A service's stdout and stderr are read from a pipe, line by line: each line goes to the
service's log file (a ``LineSink``), and the last error it reports is kept, so that a crash
can be explained in one line instead of the service's whole output.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Protocol

from parley_launcher import pending_build
from parley_launcher.embedded.process import die_with_parent
from parley_launcher.render import error_summary

log = logging.getLogger(__name__)

BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 30.0
# A process that stayed up this long is healthy again: its next crash restarts it quickly.
STABLE_AFTER_S = 30.0
STOP_GRACE_S = 10.0
# A log line longer than this is cut (JSON lines with a traceback stay far below it).
LINE_LIMIT = 1024 * 1024
# After the process exits, how long its pipe may stay open (held by a grandchild).
DRAIN_S = 2.0


@dataclass(frozen=True)
class ServiceSpec:
    """How to run one service, and the port of its ``/health`` (if it serves one)."""

    name: str
    module: str
    env: dict[str, str] = field(default_factory=dict)
    port: int | None = None


@dataclass(frozen=True)
class ServiceExit:
    """How a service process ended, as the supervisor reports it."""

    reason: str
    last_error: str | None
    restarts: int
    # Consecutive deaths without a stable run in between: 2 or more is a crash loop.
    streak: int
    restart_in_s: float


class LineSink(Protocol):
    """Where a service's output lines go (``LogWriter``)."""

    def write(self, name: str, line: bytes) -> None:
        """Take one line of ``name``'s output; must not block."""


class ServiceEvents(Protocol):
    """Told when a service process starts and when it dies."""

    async def started(self, process: ServiceProcess) -> None:
        """A new process of the service runs (``process.pid``)."""

    async def exited(self, process: ServiceProcess, ended: ServiceExit) -> None:
        """The process died and will be restarted after ``ended.restart_in_s``."""


class _Silent:
    async def started(self, process: ServiceProcess) -> None:
        pass

    async def exited(self, process: ServiceProcess, ended: ServiceExit) -> None:
        pass


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
        self,
        spec: ServiceSpec,
        base_env: dict[str, str],
        backoff_start_s: float = BACKOFF_START_S,
        *,
        sink: LineSink | None = None,
        events: ServiceEvents | None = None,
    ) -> None:
        self.spec = spec
        self.env = {**base_env, **spec.env}
        self.backoff_start_s = backoff_start_s
        # Without a sink the output goes where the launcher's goes (and no error is kept).
        self.sink = sink
        self.events = events or _Silent()
        self.proc: asyncio.subprocess.Process | None = None
        self.restarts = 0
        # Counts the processes started so far, so that a watcher can tell a restart apart.
        self.generation = 0
        # The last error the current process reported (None until it reports one).
        self.last_error: str | None = None
        self._stopping = asyncio.Event()

    @property
    def pid(self) -> int | None:
        """Pid of the running process."""
        return self.proc.pid if self.proc and self.proc.returncode is None else None

    async def _spawn(self) -> asyncio.subprocess.Process:
        # Through a waiter while the module's native library is still compiling.
        args = await asyncio.to_thread(pending_build.module_args, self.spec.module)
        return await asyncio.create_subprocess_exec(
            sys.executable,
            *args,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=None if self.sink is None else asyncio.subprocess.PIPE,
            stderr=None if self.sink is None else asyncio.subprocess.STDOUT,
            limit=LINE_LIMIT,
            preexec_fn=die_with_parent(),
            start_new_session=True,
        )

    async def _pump(self, stream: asyncio.StreamReader, sink: LineSink) -> None:
        while True:
            try:
                line = await stream.readline()
            except ValueError:  # longer than LINE_LIMIT: the reader has dropped it
                line = b"[parley: a line over 1 MiB was cut]\n"
            if not line:
                return
            sink.write(self.spec.name, line)
            summary = error_summary(line.decode(errors="replace"))
            if summary:
                self.last_error = summary

    async def _run_once(self, proc: asyncio.subprocess.Process) -> int:
        if proc.stdout is None or self.sink is None:
            return await proc.wait()
        async with asyncio.TaskGroup() as tg:
            pump = tg.create_task(self._pump(proc.stdout, self.sink))
            code = await proc.wait()
            # The last lines (the traceback) are read before the exit is reported.
            _, pending = await asyncio.wait({pump}, timeout=DRAIN_S)
            for task in pending:
                task.cancel()
        return code

    async def run(self) -> None:
        """Keep the service running until ``stop``."""
        backoff = self.backoff_start_s
        streak = 0
        while not self._stopping.is_set():
            started = time.monotonic()
            self.proc = await self._spawn()
            if self._stopping.is_set():  # stop() came while the process was being created
                await self._terminate(self.proc)
            self.generation += 1
            self.last_error = None
            log.info(
                "service started", extra={"child_service": self.spec.name, "pid": self.proc.pid}
            )
            await self.events.started(self)
            code = await self._run_once(self.proc)
            if self._stopping.is_set():
                break
            if time.monotonic() - started >= STABLE_AFTER_S:
                backoff = self.backoff_start_s
                streak = 0
            self.restarts += 1
            streak += 1
            ended = ServiceExit(
                describe_exit(code), self.last_error, self.restarts, streak, backoff
            )
            log.error(
                "service died; restarting",
                extra={
                    "child_service": self.spec.name,
                    "reason": ended.reason,
                    "last_error": ended.last_error,
                    "restart_in_s": backoff,
                    "restarts": self.restarts,
                },
            )
            await self.events.exited(self, ended)
            # Wait out the backoff, but stop at once when asked to.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after the grace period; no restart after that."""
        self._stopping.set()
        if self.proc is not None:
            await self._terminate(self.proc)

    async def _terminate(self, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is not None:
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

    def __init__(
        self,
        specs: list[ServiceSpec],
        base_env: dict[str, str] | None = None,
        *,
        sink: LineSink | None = None,
        events: ServiceEvents | None = None,
    ) -> None:
        env = dict(os.environ if base_env is None else base_env)
        self.processes = [ServiceProcess(spec, env, sink=sink, events=events) for spec in specs]

    async def run(self, stop: asyncio.Event) -> None:
        """Run all services until ``stop`` is set, then stop them all."""
        async with asyncio.TaskGroup() as tg:
            for process in self.processes:
                tg.create_task(process.run())
            await stop.wait()
            await asyncio.gather(*(p.stop() for p in self.processes))
