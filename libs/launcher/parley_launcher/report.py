"""What ``parley up`` tells a person while it runs, and what it records for ``parley status``.

One line per component as it becomes ready, one line when a service dies (with the last
error from its log), one line when a crash loop is noticed (not one per restart), and the URL
last, once every service is ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path

from parley_launcher import pending_build
from parley_launcher.console import Console
from parley_launcher.state import LauncherState, ServiceState, write_atomically
from parley_launcher.supervisor import ServiceExit, ServiceProcess, ServiceSpec

log = logging.getLogger(__name__)

# The URL waits for every service; after this long it is printed anyway, naming the laggards.
READY_GRACE_S = 120.0


def crash_line(ended: ServiceExit, log_file: str) -> str:
    """The one line that explains a death: why it ended, its last error, where its log is."""
    if ended.streak >= 2:
        what = f"keeps crashing ({ended.restarts} restarts, {ended.reason})"
        then = f"retrying with backoff up to 30s; log: {log_file}"
    else:
        what = ended.reason
        then = f"restarting in {ended.restart_in_s:g}s; log: {log_file}"
    error = f": {ended.last_error}" if ended.last_error else ""
    return f"{what}{error} — {then}"


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it is inside it (``.parley/logs``)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class UpReport:
    """The ``ServiceEvents`` of ``parley up``: console lines plus the state file."""

    def __init__(
        self,
        console: Console,
        specs: list[ServiceSpec],
        state: LauncherState,
        state_file: Path,
        log_dir: Path,
        page_token: str | None = None,
    ) -> None:
        self.console = console
        # Goes in the URL's fragment: the browser hands it to the page, never to a server.
        self.page_token = page_token
        self.specs = {spec.name: spec for spec in specs}
        self.state = state
        self.state_file = state_file
        self.log_dir = log_dir
        self.ready: set[str] = set()
        self._changed = asyncio.Event()
        # Per service, the error of the crash loop already reported (so that it is said once).
        self._reported: dict[str, str | None] = {}
        self._announced = False
        self._saving = asyncio.Lock()
        for spec in specs:
            state.services[spec.name] = ServiceState(
                port=spec.port, log=str(log_dir / f"{spec.name}.log")
            )

    def _show_waiting(self) -> None:
        # Until the URL is out, a terminal's last line says which services are still starting.
        if self._announced:
            return
        missing = [name for name in self.specs if name not in self.ready]
        self.console.pending(f"waiting for {', '.join(missing)}" if missing else "")

    def _log_file(self, name: str) -> str:
        return display_path(self.log_dir / f"{name}.log")

    async def _save(self) -> None:
        # A snapshot taken on the loop, written off it; one write at a time, in order.
        async with self._saving:
            await asyncio.to_thread(write_atomically, self.state_file, self.state.to_json())

    async def started(self, process: ServiceProcess) -> None:
        """Record the new pid."""
        entry = self.state.services[process.spec.name]
        entry.pid = process.pid
        entry.restarts = process.restarts
        await self._save()

    async def exited(self, process: ServiceProcess, ended: ServiceExit) -> None:
        """Say why the service died: once per death, but once per crash loop."""
        name = process.spec.name
        entry = self.state.services[name]
        entry.pid = None
        entry.restarts = ended.restarts
        await self._save()
        self.ready.discard(name)
        looping = ended.streak >= 2
        if looping and name in self._reported and self._reported[name] == ended.last_error:
            return
        if looping:
            self._reported[name] = ended.last_error
        label = "crash loop" if looping else "stopped"
        self.console.problem(name, label, crash_line(ended, self._log_file(name)))
        self._show_waiting()

    async def healthy(self, process: ServiceProcess) -> None:
        """The service answers ``/health``: its ready line (or its recovery line)."""
        name = process.spec.name
        port = process.spec.port
        again = process.restarts > 0
        self._reported.pop(name, None)
        self.ready.add(name)
        self._changed.set()
        log.info("service healthy", extra={"child_service": name, "port": port})
        detail = f"port {port}" if port is not None else ""
        if again:
            self.console.state(name, "ready again", f"{detail} (restart {process.restarts})")
        else:
            self.console.ready(name, detail)
        self._show_waiting()

    def _building(self, build: pending_build.PendingBuild | None) -> set[str]:
        if build is None:
            return set()
        return {name for name, spec in self.specs.items() if spec.module == build.module}

    async def _wait_ready(self, stop: asyncio.Event, grace_s: float) -> list[str] | None:
        # The services not ready when it is time to announce; None if the platform stopped.
        deadline = time.monotonic() + grace_s
        no_gateway = "gateway" not in self.specs
        while not stop.is_set():
            missing = [name for name in self.specs if name not in self.ready]
            # A service whose library is still compiling does not hold the URL back.
            build = await asyncio.to_thread(pending_build.pending)
            awaited = [name for name in missing if name not in self._building(build)]
            late = time.monotonic() >= deadline and (no_gateway or "gateway" in self.ready)
            if not awaited or late:
                return missing
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                wait_s = max(0.05, min(1.0, deadline - time.monotonic()))
                await asyncio.wait_for(self._changed.wait(), wait_s)
        return None

    async def announce(self, stop: asyncio.Event, grace_s: float = READY_GRACE_S) -> None:
        """Print the URL once every service is ready (or the gateway is, and ``grace_s`` has
        passed: then say which ones are not); nothing if the platform stops first."""
        self._show_waiting()
        missing = await self._wait_ready(stop, grace_s)
        if missing is None:
            return
        self._announced = True
        self.console.pending("")
        build = await asyncio.to_thread(pending_build.pending)
        building = self._building(build)
        for name in missing:
            if build is not None and name in building:
                # The build's log is megabytes: read off the loop.
                described = await asyncio.to_thread(build.describe)
                detail = f"{described} · log: {display_path(build.log)}"
                self.console.state(name, "compiling", detail, tone="yellow")
            else:
                detail = f"see parley logs {name}"
                self.console.state(name, "not ready yet", detail, tone="yellow")
        logs = display_path(self.log_dir)
        self.console.note(
            f"Logs: {logs}/<service>.log  ·  parley logs -f  ·  parley status  ·  Ctrl-C stops"
        )
        gateway = self.specs.get("gateway")
        if gateway is None or gateway.port is None:
            self.console.headline(f"Parley is up: {', '.join(self.specs)} (no gateway, no URL)")
            return
        url = f"http://127.0.0.1:{gateway.port}"
        log.info("parley is up", extra={"url": f"{url}/"})  # without the token: logs are kept
        page = f"{url}/#token={self.page_token}" if self.page_token else f"{url}/"
        self.console.note(f"API docs: {url}/docs  ·  a token for curl: parley token --user NAME")
        self.console.headline(f"Parley is up: {page}")
