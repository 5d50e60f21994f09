"""Runs Parley for a benchmark the way it is deployed: embedded NATS and PostgreSQL, and
every service as its own OS process under the launcher's supervisor."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from parley_common.db.migrate import migrate
from parley_common.providers import TEST_PROVIDERS_ENV
from parley_launcher.embedded.nats_server import EmbeddedNats
from parley_launcher.embedded.postgres_server import EmbeddedPostgres
from parley_launcher.embedded.process import free_port
from parley_launcher.scale import parse_scale, replicas
from parley_launcher.supervisor import ServiceSpec, Supervisor

SERVICES = ("stt", "llm", "tts", "analytics", "gateway")


@dataclass
class Platform:
    """A running Parley."""

    url: str
    supervisor: Supervisor

    def processes(self) -> list[psutil.Process]:
        """The service processes (for CPU and memory readings)."""
        return [psutil.Process(p.pid) for p in self.supervisor.processes if p.pid]


@contextlib.asynccontextmanager
async def running_platform(extra_env: dict[str, str] | None = None) -> AsyncIterator[Platform]:
    """Start everything, wait until the gateway answers, stop everything afterwards.
    ``PARLEY_SCALE`` runs several processes of a service, as ``parley up --scale`` does."""
    with tempfile.TemporaryDirectory(prefix="parley-bench-") as tmp:
        nats = EmbeddedNats(Path(tmp) / "nats")
        pg = EmbeddedPostgres(Path(tmp) / "pg", fast=True)
        await asyncio.to_thread(nats.start)
        await asyncio.to_thread(pg.start)
        try:
            await migrate(pg.url)
            port = free_port()
            env = {
                **os.environ,
                "NATS_URL": nats.url,
                "DATABASE_URL": pg.url,
                TEST_PROVIDERS_ENV: "1",
                "LOG_LEVEL": "WARNING",
                **(extra_env or {}),
            }
            scale = parse_scale(None, SERVICES)
            specs = []
            for name in SERVICES:
                own = port if name == "gateway" else free_port()
                env_port = {f"{name.upper()}_HTTP_PORT": str(own)}
                spec = ServiceSpec(name, f"parley_{name}", env_port, own)
                specs += replicas(spec, scale.get(name, 1), free_port)
            supervisor = Supervisor(specs, env)
            stop = asyncio.Event()
            task = asyncio.create_task(supervisor.run(stop))
            url = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient() as client:
                for _ in range(600):
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get(f"{url}/health")).status_code == 200:
                            break
                    await asyncio.sleep(0.1)
            await asyncio.sleep(2.0)  # workers subscribe to their queue groups
            try:
                yield Platform(url, supervisor)
            finally:
                stop.set()
                await task
        finally:
            pg.stop()
            nats.stop()
