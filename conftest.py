"""Fixtures shared by every test folder: the real embedded NATS and PostgreSQL, started on
free ports with temporary data directories, once per test run."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from pydantic import SecretStr

from parley_common.bus import Bus
from parley_common.contracts.subjects import EVENTS_STREAM, EVENTS_SUBJECTS
from parley_common.db.migrate import migrate
from parley_common.db.pool import create_pool
from parley_common.providers import TEST_PROVIDERS_ENV, prepare_providers
from parley_common.runtime import Runtime
from parley_common.settings import ServiceSettings
from parley_common.testing import serving
from parley_common.workers import SessionWorker
from parley_gateway.app import create_app
from parley_gateway.settings import GatewaySettings
from parley_launcher.embedded.nats_server import EmbeddedNats
from parley_launcher.embedded.postgres_server import EmbeddedPostgres
from parley_launcher.embedded.process import free_port
from parley_llm.providers.registry import REGISTRY as LLM_PROVIDERS
from parley_llm.session import open_session as open_llm
from parley_stt.jobs import serve_transcriptions
from parley_stt.providers.registry import REGISTRY as STT_PROVIDERS
from parley_stt.session import open_session as open_stt
from parley_tts.jobs import serve_syntheses
from parley_tts.providers.registry import REGISTRY as TTS_PROVIDERS
from parley_tts.session import open_session as open_tts
from parley_tts.voices import serve_voices

# Tests never reach beyond this machine; the models load from installed packages.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of an embedded nats-server with JetStream."""
    server = EmbeddedNats(tmp_path_factory.mktemp("nats"))
    server.start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """An embedded PostgreSQL 18 (durability off: these are tests)."""
    server = EmbeddedPostgres(Path(tmp_path_factory.mktemp("pg")) / "data", fast=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def database_url(postgres_server: EmbeddedPostgres) -> str:
    """URL of the migrated Parley database."""
    await migrate(postgres_server.url)
    return postgres_server.url


@pytest.fixture(scope="session")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the migrated database."""
    p = await create_pool(database_url)
    yield p
    await p.close()


@pytest.fixture
async def bus(nats_url: str) -> AsyncIterator[Bus]:
    """A fresh bus connection per test."""
    b = await Bus.connect(nats_url, name="test")
    # As every service's runtime does: durable events need their stream.
    await b.ensure_stream(EVENTS_STREAM, [EVENTS_SUBJECTS])
    yield b
    await b.close()


@pytest.fixture(scope="module")
async def platform_url(nats_url: str, database_url: str, pool: asyncpg.Pool) -> AsyncIterator[str]:
    """Base URL of a gateway whose sessions are served by in-process STT, dialogue and TTS
    workers (their production session code), with the scripted test doubles enabled."""
    os.environ[TEST_PROVIDERS_ENV] = "1"
    bus = await Bus.connect(nats_url, name="conversation-workers")
    settings = ServiceSettings(nats_url=nats_url, database_url=SecretStr(database_url))
    runtimes = {
        name: Runtime(name, f"{name}-inproc", settings, bus, pool, asyncio.Event())
        for name in ("stt", "llm", "tts")
    }
    # As each worker does at start-up: adapters built off the loop, then provider queries.
    await prepare_providers(runtimes["stt"], STT_PROVIDERS)
    await prepare_providers(runtimes["llm"], LLM_PROVIDERS)
    await prepare_providers(runtimes["tts"], TTS_PROVIDERS)
    workers = [
        SessionWorker(name, runtimes[name].worker_id, bus, factory(runtimes[name]))
        for name, factory in (("stt", open_stt), ("llm", open_llm), ("tts", open_tts))
    ]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    await serve_voices(bus)
    await serve_transcriptions(bus)
    await serve_syntheses(bus)
    port = free_port()
    gateway = GatewaySettings(
        nats_url=nats_url, database_url=SecretStr(database_url), http_port=port
    )
    async with serving(create_app(gateway), port) as url:
        yield url
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await bus.close()
