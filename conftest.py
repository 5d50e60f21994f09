"""Fixtures shared by every test folder: the real embedded NATS and PostgreSQL, started on
free ports with temporary data directories, once per test run."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pydantic import SecretStr

from parley_common.bus import Bus
from parley_common.contracts.session import LlmProvider as LlmName
from parley_common.contracts.session import SttProvider as SttName
from parley_common.contracts.subjects import EVENTS_STREAM, EVENTS_SUBJECTS
from parley_common.db.migrate import migrate
from parley_common.db.pool import create_pool
from parley_common.providers import TEST_PROVIDERS_ENV, prepare_providers
from parley_common.runtime import Runtime
from parley_common.settings import ServiceSettings
from parley_common.testing import serving
from parley_common.tokens import AuthSettings, mint_token, new_secret
from parley_common.workers import SessionWorker
from parley_gateway.app import create_app
from parley_gateway.settings import GatewaySettings
from parley_launcher.embedded.nats_server import EmbeddedNats
from parley_launcher.embedded.postgres_server import EmbeddedPostgres
from parley_launcher.embedded.process import free_port
from parley_llm.providers.registry import REGISTRY as LLM_PROVIDERS
from parley_llm.providers.registry import get_provider as get_llm
from parley_llm.providers.scripted import ScriptedLlmProvider
from parley_llm.session import open_session as open_llm
from parley_stt.jobs import serve_transcriptions
from parley_stt.providers.registry import REGISTRY as STT_PROVIDERS
from parley_stt.providers.registry import get_provider as get_stt
from parley_stt.providers.scripted import ScriptedSttProvider
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


@contextlib.asynccontextmanager
async def inprocess_workers(nats_url: str, pool: asyncpg.Pool) -> AsyncIterator[None]:
    """In-process STT, dialogue and TTS workers (their production session code) on the
    bus at ``nats_url`` and the database of ``pool``, with the scripted test doubles
    enabled, until the block ends."""
    os.environ[TEST_PROVIDERS_ENV] = "1"
    bus = await Bus.connect(nats_url, name="conversation-workers")
    settings = ServiceSettings(nats_url=nats_url, database_url=SecretStr("unused"))
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
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await bus.close()


@pytest.fixture(scope="module")
async def platform_workers(nats_url: str, pool: asyncpg.Pool) -> AsyncIterator[None]:
    """``inprocess_workers`` on the session's NATS and PostgreSQL; gateways below send them
    sessions."""
    async with inprocess_workers(nats_url, pool):
        yield


@pytest.fixture(scope="session")
def start_workers() -> Callable[[str, asyncpg.Pool], contextlib.AbstractAsyncContextManager[None]]:
    """``inprocess_workers`` itself, for a test that runs its own NATS or PostgreSQL (one
    it stops, say) and so cannot use ``platform_workers``."""
    return inprocess_workers


@pytest.fixture(scope="module")
async def platform_url(
    nats_url: str, database_url: str, platform_workers: None
) -> AsyncIterator[str]:
    """Base URL of a loopback gateway without authentication (no token key configured),
    in front of ``platform_workers``."""
    port = free_port()
    gateway = GatewaySettings(
        nats_url=nats_url, database_url=SecretStr(database_url), http_port=port
    )
    # Explicitly off: a developer's .env or environment must not turn it on here.
    async with serving(create_app(gateway, AuthSettings.model_construct()), port) as url:
        yield url


@dataclass(frozen=True)
class SecuredPlatform:
    """A gateway that requires HS256 tokens signed with ``secret``."""

    url: str
    secret: str

    def token(self, user: str, *, scopes: list[str] | None = None, ttl_s: float = 600) -> str:
        """A valid token for ``user``."""
        return mint_token(self.secret, user, scopes=scopes, ttl_s=ttl_s)

    def headers(self, user: str, **kw: Any) -> dict[str, str]:
        """``Authorization`` header for ``user``."""
        return {"Authorization": f"Bearer {self.token(user, **kw)}"}


@pytest.fixture(scope="module")
async def secured_platform(
    nats_url: str, database_url: str, platform_workers: None
) -> AsyncIterator[SecuredPlatform]:
    """A gateway with authentication on, in front of ``platform_workers``."""
    port = free_port()
    secret = new_secret()
    gateway = GatewaySettings(
        nats_url=nats_url, database_url=SecretStr(database_url), http_port=port
    )
    auth = AuthSettings(secret=SecretStr(secret))
    async with serving(create_app(gateway, auth), port) as url:
        yield SecuredPlatform(url, secret)


@pytest.fixture
def scripted_llm() -> Iterator[ScriptedLlmProvider]:
    """The scripted LLM the in-process workers share, its reply and pace restored after."""
    provider = get_llm(LlmName.SCRIPTED)
    assert isinstance(provider, ScriptedLlmProvider)
    reply, delay = provider.reply, provider.delta_delay_s
    yield provider
    provider.reply, provider.delta_delay_s = reply, delay


@pytest.fixture
def scripted_stt() -> Iterator[ScriptedSttProvider]:
    """The scripted STT the in-process workers share, its script restored after."""
    provider = get_stt(SttName.SCRIPTED)
    assert isinstance(provider, ScriptedSttProvider)
    script = provider.script
    yield provider
    provider.script = script
