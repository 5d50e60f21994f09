"""Asking a service's ``GET /health`` whether it is healthy, and watching it become so."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from parley_launcher.supervisor import ServiceProcess

POLL_S = 0.25


@dataclass(frozen=True)
class Health:
    """The answer of one probe."""

    ok: bool
    detail: str


def health_url(port: int) -> str:
    """The health endpoint of a service listening on ``port`` on this machine."""
    return f"http://127.0.0.1:{port}/health"


async def probe(client: httpx.AsyncClient, port: int, timeout_s: float = 2.0) -> Health:
    """``GET /health`` on ``port``: ok on 200; otherwise what failed, in a few words."""
    try:
        response = await client.get(health_url(port), timeout=timeout_s)
    except httpx.ConnectError:
        return Health(False, "not listening")
    except httpx.TimeoutException:
        return Health(False, f"no answer within {timeout_s:g}s")
    except httpx.HTTPError as exc:
        return Health(False, type(exc).__name__)
    if response.status_code == 200:
        return Health(True, "healthy")
    try:
        checks = response.json().get("checks", {})
        failed = [name for name, result in checks.items() if result != "ok"]
    except (ValueError, AttributeError):
        failed = []
    reason = f"{', '.join(failed)} failing" if failed else f"HTTP {response.status_code}"
    return Health(False, reason)


async def watch(
    process: ServiceProcess,
    client: httpx.AsyncClient,
    on_healthy: Callable[[ServiceProcess], Awaitable[None]],
    stop: asyncio.Event,
) -> None:
    """Call ``on_healthy`` once for every process generation that answers ``/health`` with 200
    (the first start, and each restart), until ``stop``."""
    port = process.spec.port
    if port is None:
        return
    seen = 0
    while not stop.is_set():
        generation = process.generation
        if generation != seen and process.pid is not None and (await probe(client, port)).ok:
            seen = generation
            await on_healthy(process)
        await asyncio.sleep(POLL_S)
