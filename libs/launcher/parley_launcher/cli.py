"""``parley up``: the whole platform on one machine.

Starts an embedded NATS (JetStream) and an embedded PostgreSQL unless ``NATS_URL`` /
``DATABASE_URL`` point at existing ones, applies the migrations, then runs every service as
its own process under a supervisor, and prints the URL of the UI when the gateway is healthy.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from contextlib import ExitStack
from pathlib import Path

import httpx

from parley_common.db.migrate import migrate
from parley_common.observability.logging import configure_logging
from parley_launcher.embedded.nats_server import EmbeddedNats
from parley_launcher.embedded.postgres_server import EmbeddedPostgres
from parley_launcher.embedded.process import free_port, port_is_free
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


def _port(env_name: str, default: int) -> int:
    if env_name in os.environ:
        return int(os.environ[env_name])
    return default if port_is_free(default) else free_port()


def service_specs(only: list[str]) -> list[ServiceSpec]:
    """The services to run with their HTTP ports (``<SERVICE>_HTTP_PORT`` overrides)."""
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
        specs.append(
            ServiceSpec(name, f"parley_{name}", {env_name: str(_port(env_name, default_port))})
        )
    return specs


async def _announce_when_ready(url: str, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient() as client:
        while not stop.is_set():
            try:
                if (await client.get(f"{url}/health", timeout=1.0)).status_code == 200:
                    print(f"\n  Parley is up: {url}/   (API docs: {url}/docs)\n", flush=True)
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.25)


async def _supervise(specs: list[ServiceSpec], env: dict[str, str]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    supervisor = Supervisor(specs, env)
    gateway = next((s for s in specs if s.name == "gateway"), None)
    async with asyncio.TaskGroup() as tg:
        if gateway is not None:
            tg.create_task(
                _announce_when_ready(f"http://127.0.0.1:{gateway.env['GATEWAY_HTTP_PORT']}", stop)
            )
        await supervisor.run(stop)
    log.info("all services stopped")


def up(args: argparse.Namespace) -> int:
    """Run the platform until interrupted."""
    data_dir = Path(args.data_dir or os.environ.get("PARLEY_DATA_DIR", ".parley")).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    only = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else []
    specs = service_specs(only)
    env = dict(os.environ)
    # Every child runs in its own session, so a terminal's Ctrl-C reaches only this process,
    # which then stops the services before the bus and the database they use.
    with ExitStack() as infra:
        if "NATS_URL" not in env:
            nats = EmbeddedNats(data_dir / "nats", port=_port("PARLEY_NATS_PORT", 4222))
            nats.start()
            infra.callback(nats.stop)
            env["NATS_URL"] = nats.url
            log.info("embedded NATS started", extra={"url": nats.url})
        if "DATABASE_URL" not in env:
            pg = EmbeddedPostgres(data_dir / "postgres", port=_port("PARLEY_PG_PORT", 5432))
            pg.start()
            infra.callback(pg.stop)
            env["DATABASE_URL"] = pg.url
            log.info("embedded PostgreSQL started", extra={"url": pg.url})
        applied = asyncio.run(migrate(env["DATABASE_URL"]))
        log.info("migrations applied", extra={"versions": applied})
        asyncio.run(_supervise(specs, env))
    return 0


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``parley`` command."""
    parser = argparse.ArgumentParser(prog="parley", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up_cmd = commands.add_parser("up", help="run NATS, PostgreSQL and every service")
    up_cmd.add_argument("--only", help="comma-separated services to run, e.g. gateway,stt")
    up_cmd.add_argument(
        "--data-dir",
        help="where embedded NATS/PostgreSQL keep data (default $PARLEY_DATA_DIR or ./.parley)",
    )
    args = parser.parse_args(argv)
    configure_logging("launcher", os.environ.get("LOG_LEVEL", "INFO"))
    sys.exit(up(args))


if __name__ == "__main__":
    main()
