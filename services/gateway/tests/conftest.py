"""A real gateway on a free port, over the embedded NATS and PostgreSQL, with in-process
workers of the streaming services so that sessions can be assigned."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr

from parley_common.bus import Bus
from parley_common.testing import hold_session, serving
from parley_common.workers import SessionWorker
from parley_gateway.app import create_app
from parley_gateway.sessions.lifecycle import STREAMING_SERVICES
from parley_gateway.settings import GatewaySettings
from parley_launcher.embedded.process import free_port

MAX_BODY = 64 * 1024


@pytest.fixture(scope="module")
async def workers(nats_url: str) -> AsyncIterator[dict[str, SessionWorker]]:
    """One worker per streaming service that holds sessions without processing them."""
    bus = await Bus.connect(nats_url, name="test-workers")
    held = {s: SessionWorker(s, f"{s}-test", bus, hold_session) for s in STREAMING_SERVICES}
    tasks = [asyncio.create_task(w.run()) for w in held.values()]
    await asyncio.sleep(0.1)
    yield held
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await bus.close()


@pytest.fixture(scope="module")
async def gateway_url(
    nats_url: str, database_url: str, workers: dict[str, SessionWorker]
) -> AsyncIterator[str]:
    """Base URL of a running gateway."""
    port = free_port()
    settings = GatewaySettings(
        nats_url=nats_url,
        database_url=SecretStr(database_url),
        http_port=port,
        max_body_bytes=MAX_BODY,
    )
    async with serving(create_app(settings), port) as url:
        yield url


@pytest.fixture
def max_body_bytes() -> int:
    """The gateway's body limit in these tests (small, to test it cheaply)."""
    return MAX_BODY


@pytest.fixture
async def client(gateway_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the gateway."""
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as c:
        yield c
