"""``parley status``: what a running ``parley up`` runs, and whether each part is healthy.

Works from any terminal: it reads the launcher's state file (pids, ports, addresses) in the
data dir, asks every service's ``GET /health``, checks that PostgreSQL accepts connections,
and listens to the workers' heartbeats on NATS for a moment to count the sessions they hold.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import nats
from nats.aio.msg import Msg
from pydantic import ValidationError

from parley_common.bus.client import seed_urls
from parley_common.contracts import subjects
from parley_common.contracts.bus import WorkerHeartbeat
from parley_common.workers import HEARTBEAT_INTERVAL_S
from parley_launcher import health
from parley_launcher.console import Console
from parley_launcher.report import display_path
from parley_launcher.state import Infra, LauncherState, resolve_data_dir, state_path

# Long enough to hear one heartbeat of every worker.
LISTEN_S = HEARTBEAT_INTERVAL_S * 1.5


@dataclass(frozen=True)
class Part:
    """One line of the report: a service, NATS or PostgreSQL."""

    name: str
    ok: bool
    detail: str
    port: int | None = None
    pid: int | None = None
    restarts: int = 0
    sessions: int | None = None


@dataclass(frozen=True)
class Report:
    """Everything ``parley status`` found."""

    running: bool
    data_dir: str
    launcher_pid: int | None = None
    uptime_s: float | None = None
    parts: tuple[Part, ...] = ()
    # Distinct sessions held by workers; None when NATS could not be asked.
    sessions: int | None = None

    @property
    def healthy(self) -> bool:
        """Running, and every part healthy."""
        return self.running and all(part.ok for part in self.parts)


@dataclass
class Held:
    """The sessions workers hold, from their heartbeats."""

    by_service: dict[str, set[str]] = field(default_factory=dict)
    by_worker: dict[str, set[str]] = field(default_factory=dict)

    def of(self, name: str, pid: int | None) -> int | None:
        """Sessions of the process ``pid`` (a worker id ends with its pid), else of every
        worker of service ``name``; None when no worker said."""
        if pid is not None:
            for worker_id, sessions in self.by_worker.items():
                if worker_id.endswith(f"-{pid}"):
                    return len(sessions)
        return len(self.by_service[name]) if name in self.by_service else None


async def held_sessions(nats_url: str, listen_s: float = LISTEN_S) -> Held | None:
    """The sessions each service's workers hold, from their heartbeats; None if NATS cannot
    be reached."""
    held = Held()

    async def on_beat(msg: Msg) -> None:
        with contextlib.suppress(ValidationError):
            beat = WorkerHeartbeat.model_validate_json(msg.data)
            held.by_service.setdefault(beat.service, set()).update(beat.sessions)
            held.by_worker[beat.worker_id] = set(beat.sessions)

    async def quiet(_: Exception) -> None:
        pass  # a CLI probe reports a failure once, below, not once per attempt

    try:
        async with asyncio.timeout(2.0):
            nc = await nats.connect(
                servers=seed_urls(nats_url),
                name="parley-status",
                allow_reconnect=False,
                error_cb=quiet,
            )
    except (OSError, TimeoutError, ValueError, nats.errors.Error):
        return None
    try:
        await nc.subscribe(subjects.heartbeat("*"), cb=on_beat)
        await asyncio.sleep(listen_s)
    finally:
        await nc.close()
    return held


async def _accepts_connections(url: str) -> bool:
    parts = urlsplit(url)
    if not parts.hostname:
        return False
    try:
        async with asyncio.timeout(2.0):
            _, writer = await asyncio.open_connection(parts.hostname, parts.port or 5432)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def _infra_part(name: str, infra: Infra | None, ok: bool) -> Part:
    if infra is None:
        return Part(name, False, "unknown")
    where = infra.url if infra.embedded else f"{infra.url} (external)"
    return Part(name, ok, where if ok else f"unreachable at {where}", pid=infra.pid)


async def collect(data_dir: Path) -> Report:
    """Probe everything the state file of ``data_dir`` lists."""
    state = LauncherState.load(state_path(data_dir))
    if state is None or not state.alive:
        return Report(False, str(data_dir), state.launcher_pid if state else None)
    nats_url = os.environ.get("NATS_URL") or (state.nats.url if state.nats else "")
    pg_url = state.postgres.url if state.postgres else ""
    async with httpx.AsyncClient() as client, asyncio.TaskGroup() as tg:
        beats = tg.create_task(held_sessions(nats_url))
        pg_up = tg.create_task(_accepts_connections(pg_url))
        probes = {
            name: tg.create_task(health.probe(client, service.port))
            for name, service in state.services.items()
            if service.port is not None
        }
    held = beats.result()
    parts = [
        _infra_part("NATS", state.nats, held is not None),
        _infra_part("PostgreSQL", state.postgres, pg_up.result()),
    ]
    for name, service in state.services.items():
        answer = probes[name].result() if name in probes else health.Health(False, "no port")
        count = held.of(name, service.pid) if held is not None else None
        parts.append(
            Part(name, answer.ok, answer.detail, service.port, service.pid, service.restarts, count)
        )
    total = len(set().union(*held.by_service.values())) if held is not None else None
    return Report(
        True, str(data_dir), state.launcher_pid, time.time() - state.started_at, tuple(parts), total
    )


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes}m" if hours else f"{minutes}m {secs}s" if minutes else f"{secs}s"


def render(report: Report, console: Console) -> None:
    """The report as a person reads it."""
    where = display_path(Path(report.data_dir))
    if not report.running:
        gone = f" (its launcher, pid {report.launcher_pid}, is gone)" if report.launcher_pid else ""
        console.heading(f"Parley is not running from {where}{gone}. Start it with `parley up`.")
        return
    uptime = _duration(report.uptime_s or 0)
    console.heading(f"Parley is running · launcher pid {report.launcher_pid} · up {uptime}")
    for part in report.parts:
        facts = [part.detail] if part.port is None else [f"port {part.port}"]
        if part.port is not None and not part.ok:
            facts.append(part.detail)
        facts += [f"pid {part.pid}"] if part.pid else []
        facts += [f"restarts {part.restarts}"] if part.restarts else []
        facts += [f"sessions {part.sessions}"] if part.sessions is not None else []
        state = ("ok" if part.port is None else "healthy") if part.ok else "unhealthy"
        console.state(part.name, state, "  ".join(facts), tone="green" if part.ok else "red")
    if report.sessions is None:
        console.note("Active sessions: unknown (NATS did not answer)")
    else:
        console.note(f"Active sessions: {report.sessions} (from the workers' heartbeats)")


def status(args: argparse.Namespace) -> int:
    """Print the status; exit status 0 only when everything runs and is healthy."""
    data_dir = resolve_data_dir(args.data_dir)
    report = asyncio.run(collect(data_dir))
    if args.json:
        print(json.dumps({**asdict(report), "healthy": report.healthy}, indent=2))
    else:
        render(report, Console(sys.stdout))
    return 0 if report.healthy else 1
