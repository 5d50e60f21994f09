"""Fixtures shared by every test folder: the real embedded NATS and PostgreSQL, started on
free ports with temporary data directories, once per test run."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from parley_common.bus import Bus
from parley_common.db.migrate import migrate
from parley_common.db.pool import create_pool
from parley_launcher.embedded.nats_server import EmbeddedNats
from parley_launcher.embedded.postgres_server import EmbeddedPostgres

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
    yield b
    await b.close()
