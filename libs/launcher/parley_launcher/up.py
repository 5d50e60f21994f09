"""``parley up``: the whole platform on one machine.

Starts an embedded NATS (JetStream) and an embedded PostgreSQL unless ``NATS_URL`` /
``DATABASE_URL`` point at existing ones, applies the migrations, then runs every service as
its own process under a supervisor. A person sees one line per component as it becomes
ready and the URL last; each service's JSON log goes to ``<data dir>/logs/<service>.log``
(and, with ``--log-format json``, to stderr as well, as before, for log shippers).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Protocol

import asyncpg
import httpx

from parley_common.db.migrate import migrate
from parley_launcher import health
from parley_launcher.console import Console
from parley_launcher.embedded.nats_server import EmbeddedNats, EmbeddedNatsError
from parley_launcher.embedded.postgres_server import EmbeddedPostgres, EmbeddedPostgresError
from parley_launcher.embedded.process import free_port, port_is_free
from parley_launcher.local_auth import ensure_local_secret, page_token
from parley_launcher.logfile import LogWriter, WriterHandler, log_dir
from parley_launcher.report import UpReport, display_path
from parley_launcher.scale import parse_scale, replicas
from parley_launcher.state import (
    Infra,
    LauncherState,
    resolve_data_dir,
    state_path,
    without_credentials,
)
from parley_launcher.supervisor import ServiceSpec, Supervisor

log = logging.getLogger("parley")

# Start order matters little (every service retries its connections), but the gateway last
# means the URL is printed when the workers are already there to take sessions.
SERVICES: dict[str, int] = {
    "analytics": 9105,
    "clone": 9104,
    "stt": 9101,
    "llm": 9102,
    "tts": 9103,
    "gateway": 8000,
}
LOG_FORMATS = ("human", "json")


def _port(env_name: str, default: int) -> int:
    if env_name in os.environ:
        return int(os.environ[env_name])
    return default if port_is_free(default) else free_port()


def service_specs(only: list[str], scale: dict[str, int] | None = None) -> list[ServiceSpec]:
    """The services to run with their HTTP ports (``<SERVICE>_HTTP_PORT`` overrides), and
    ``scale[name]`` processes of a service where it says so."""
    unknown = set(only) - set(SERVICES)
    if unknown:
        raise SystemExit(
            f"unknown service(s): {', '.join(sorted(unknown))}; choose from {', '.join(SERVICES)}"
        )
    specs = []
    for name, default_port in SERVICES.items():
        if only and name not in only:
            continue
        env_name = f"{name.upper()}_HTTP_PORT"
        port = _port(env_name, default_port)
        spec = ServiceSpec(name, f"parley_{name}", {env_name: str(port)}, port)
        specs.extend(replicas(spec, (scale or {}).get(name, 1), free_port))
    return specs


def log_format(chosen: str | None) -> str:
    """``--log-format``, else ``LOG_FORMAT``, else human."""
    value = (chosen or os.environ.get("LOG_FORMAT") or "human").strip().lower()
    if value not in LOG_FORMATS:
        raise SystemExit(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, got {value!r}")
    return value


def _configure_logging(writer: LogWriter, level: str) -> None:
    root = logging.getLogger()
    root.handlers[:] = [WriterHandler(writer)]
    root.setLevel(level)
    # A library's warning is for the log, not for the person watching the terminal.
    logging.captureWarnings(True)
    # httpx logs every request at INFO: the health watchers would fill the launcher's log.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


async def _supervise(
    specs: list[ServiceSpec], env: dict[str, str], report: UpReport, writer: LogWriter
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    supervisor = Supervisor(specs, env, sink=writer, events=report)

    async def say_stopping() -> None:
        await stop.wait()
        report.console.pending("")
        report.console.note("Stopping Parley…")

    async with httpx.AsyncClient() as client, asyncio.TaskGroup() as tg:
        for process in supervisor.processes:
            tg.create_task(health.watch(process, client, report.healthy, stop))
        tg.create_task(report.announce(stop))
        tg.create_task(say_stopping())
        await supervisor.run(stop)
    log.info("all services stopped")


class _Server(Protocol):
    """An embedded server: ``EmbeddedNats`` or ``EmbeddedPostgres``."""

    @property
    def url(self) -> str: ...
    @property
    def pid(self) -> int | None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...


def _start_embedded(
    infra: ExitStack, name: str, server: _Server, env: dict[str, str], env_name: str
) -> Infra:
    server.start()
    infra.callback(server.stop)
    env[env_name] = server.url
    log.info(f"embedded {name} started", extra={"url": server.url})
    return Infra(server.url, server.pid)


def _start_infra(
    infra: ExitStack, data_dir: Path, env: dict[str, str], state: LauncherState, console: Console
) -> None:
    if "NATS_URL" in env:
        state.nats = Infra(without_credentials(env["NATS_URL"]), embedded=False)
        console.state("NATS", "external", f"{state.nats.url} (NATS_URL)")
    else:
        console.pending("starting NATS")
        nats = EmbeddedNats(data_dir / "nats", port=_port("PARLEY_NATS_PORT", 4222))
        state.nats = _start_embedded(infra, "NATS", nats, env, "NATS_URL")
        console.ready("NATS", state.nats.url)
    if "DATABASE_URL" in env:
        state.postgres = Infra(without_credentials(env["DATABASE_URL"]), embedded=False)
    else:
        console.pending("starting PostgreSQL")
        pg = EmbeddedPostgres(data_dir / "postgres", port=_port("PARLEY_PG_PORT", 5432))
        state.postgres = _start_embedded(infra, "PostgreSQL", pg, env, "DATABASE_URL")
    console.pending("applying database migrations")
    applied = asyncio.run(migrate(env["DATABASE_URL"]))
    log.info("migrations applied", extra={"versions": applied})
    schema = (
        f"applied migrations {', '.join(map(str, applied))}" if applied else "schema up to date"
    )
    where = (
        state.postgres.url if state.postgres.embedded else f"{state.postgres.url} (DATABASE_URL)"
    )
    console.ready("PostgreSQL", f"{where} · {schema}")


def _failed(console: Console, name: str, exc: Exception, what: str = "") -> None:
    # Said to the person, and logged, so that --log-format json reports it as well.
    detail = f"{what}{exc}" if str(exc) else f"{what}{type(exc).__name__}"
    log.error(f"{name} failed to start", extra={"error": detail})
    console.problem(name, "failed", detail)


def _run(specs: list[ServiceSpec], data_dir: Path, console: Console, writer: LogWriter) -> int:
    state = LauncherState(os.getpid(), str(data_dir))
    state_file = state_path(data_dir)
    env = dict(os.environ)
    secret = ensure_local_secret(data_dir, env)
    console.heading(f"Starting Parley (data in {display_path(data_dir)})")
    # Every child runs in its own session, so a terminal's Ctrl-C reaches only this process,
    # which then stops the services before the bus and the database they use.
    with ExitStack() as infra:
        infra.callback(state_file.unlink, missing_ok=True)
        try:
            _start_infra(infra, data_dir, env, state, console)
        except EmbeddedNatsError as exc:
            _failed(console, "NATS", exc)
            return 1
        except (EmbeddedPostgresError, subprocess.SubprocessError) as exc:  # initdb, psql
            _failed(console, "PostgreSQL", exc)
            return 1
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            _failed(console, "PostgreSQL", exc, "migrations: ")
            return 1
        state.save(state_file)
        token = page_token(secret) if secret else None
        report = UpReport(console, specs, state, state_file, log_dir(data_dir), token)
        asyncio.run(_supervise(specs, env, report, writer))
    console.note("Parley stopped.")
    return 0


def up(args: argparse.Namespace) -> int:
    """Run the platform until interrupted."""
    data_dir = resolve_data_dir(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    fmt = log_format(args.log_format)
    only = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else []
    specs = service_specs(only, parse_scale(args.scale, SERVICES))
    running = LauncherState.load(state_path(data_dir))
    if running is not None and running.alive and running.launcher_pid != os.getpid():
        print(
            f"Parley already runs from {display_path(data_dir)} (launcher pid "
            f"{running.launcher_pid}); see `parley status`.",
            file=sys.stderr,
        )
        return 1
    console = Console(sys.stdout, quiet=fmt == "json")
    writer = LogWriter(log_dir(data_dir), echo=sys.stderr.buffer if fmt == "json" else None)
    _configure_logging(writer, os.environ.get("LOG_LEVEL", "INFO"))
    try:
        return _run(specs, data_dir, console, writer)
    except KeyboardInterrupt:  # Ctrl-C before the services run: the ExitStack cleaned up
        console.note("Stopped.")
        return 130
    finally:
        writer.close()
