"""Process lifecycle of a bus service: logging, signals, bus, database, health endpoint.

A service supplies one coroutine, ``main(runtime)``; this module opens what it needs in one
place, runs it next to the ``/health`` + ``/metrics`` server, and closes everything on
SIGINT/SIGTERM. A crash of ``main`` ends the process with a non-zero status so that the
supervisor (``parley up``, systemd, Kubernetes) restarts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from parley_common.bus import Bus
from parley_common.contracts.subjects import EVENTS_STREAM, EVENTS_SUBJECTS
from parley_common.db.migrate import migrate
from parley_common.db.pool import create_pool
from parley_common.observability.health import HealthCheck, health_app, http_server
from parley_common.observability.logging import configure_logging
from parley_common.observability.metrics import EVENT_LOOP_LAG_SECONDS
from parley_common.observability.tracing import configure_tracing
from parley_common.settings import ServiceSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    """What a running service holds: passed explicitly, never global."""

    name: str
    worker_id: str
    settings: ServiceSettings
    bus: Bus
    pool: asyncpg.Pool | None
    # Set when the process is asked to stop. Loops that wait inside nats-py should also
    # check it: on Python 3.11 asyncio.wait_for can swallow a cancellation that races a
    # timeout, and such a loop would then never end.
    stopping: asyncio.Event
    # What ``/health`` reports: the bus, the database when the service uses one, and what
    # the service adds before it is ready (e.g. its providers built).
    checks: dict[str, HealthCheck] = field(default_factory=dict)


ServiceMain = Callable[[Runtime], Coroutine[Any, Any, None]]


LAG_PROBE_S = 0.25
# Past the drain time, how long a service gets to stop its sessions and say it is leaving.
DRAIN_MARGIN_S = 2.0


async def watch_event_loop(service: str) -> None:
    """Measure, forever, how late the loop wakes a timer: the time something blocked it."""
    lag = EVENT_LOOP_LAG_SECONDS.labels(service)
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + LAG_PROBE_S
        await asyncio.sleep(LAG_PROBE_S)
        lag.observe(max(0.0, loop.time() - due))


def default_worker_id(name: str) -> str:
    """``<service>-<host>-<pid>``: unique per process, readable in logs."""
    return f"{name}-{socket.gethostname()}-{os.getpid()}"


@contextlib.asynccontextmanager
async def open_runtime(
    name: str, settings: ServiceSettings, *, use_db: bool, stopping: asyncio.Event | None = None
) -> AsyncIterator[Runtime]:
    """Open what a service holds (bus, events stream, migrated database) and close it after:
    the one lifespan of every service, the gateway's included."""
    worker_id = settings.worker_id or default_worker_id(name)
    bus = await Bus.connect(settings.nats_url, name=worker_id)
    pool: asyncpg.Pool | None = None
    try:
        # Any service may publish durable events, so each makes sure their stream exists.
        await bus.ensure_stream(EVENTS_STREAM, [EVENTS_SUBJECTS])
        checks: dict[str, HealthCheck] = {"nats": _bus_check(bus)}
        if use_db:
            dsn = settings.database_url.get_secret_value()
            await migrate(dsn)
            pool = await create_pool(dsn)
            checks["postgres"] = _db_check(pool)
        lag = asyncio.create_task(watch_event_loop(name), name=f"{name}:loop-lag")
        try:
            yield Runtime(name, worker_id, settings, bus, pool, stopping or asyncio.Event(), checks)
        finally:
            lag.cancel()
    finally:
        with contextlib.suppress(Exception):
            await bus.close()
        if pool is not None:
            await pool.close()


async def serve(
    name: str, settings: ServiceSettings, main: ServiceMain, *, use_db: bool, drains: bool = False
) -> None:
    """Run ``main`` next to the ``/health`` + ``/metrics`` server until it returns or the
    process is asked to stop."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with open_runtime(name, settings, use_db=use_db, stopping=stop) as runtime:
        server = http_server(
            health_app(name, runtime.checks), settings.http_host, settings.http_port
        )
        log.info(
            "service starting", extra={"worker_id": runtime.worker_id, "port": settings.http_port}
        )
        async with asyncio.TaskGroup() as tg:
            tg.create_task(server.serve())
            main_task = tg.create_task(main(runtime))
            stopper = tg.create_task(stop.wait())
            await asyncio.wait({main_task, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if drains and stop.is_set() and not main_task.done():
                # A session worker drains on ``runtime.stopping``; the others are cancelled.
                await asyncio.wait({main_task}, timeout=settings.drain_s + DRAIN_MARGIN_S)
            server.should_exit = True
            main_task.cancel()
            stopper.cancel()
        log.info("service stopped")


def run(
    name: str,
    settings: ServiceSettings,
    main: ServiceMain,
    *,
    use_db: bool = False,
    drains: bool = False,
) -> None:
    """Entry point of a service process (``python -m parley_<service>``); ``drains``: its
    ``main`` returns by itself after ``runtime.stopping`` (within ``settings.drain_s``)."""
    configure_logging(name, settings.log_level)
    configure_tracing(name)
    try:
        import uvloop
    except ImportError:  # uvloop is an optimisation, not a requirement
        asyncio.run(serve(name, settings, main, use_db=use_db, drains=drains))
    else:
        uvloop.run(serve(name, settings, main, use_db=use_db, drains=drains))


def _bus_check(bus: Bus) -> HealthCheck:
    async def check() -> bool:
        return bus.connected

    return check


def _db_check(pool: asyncpg.Pool) -> HealthCheck:
    async def check() -> bool:
        async with asyncio.timeout(2):
            return bool(await pool.fetchval("SELECT 1") == 1)

    return check
