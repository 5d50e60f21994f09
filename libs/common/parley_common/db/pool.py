"""The asyncpg pool, opened once per process in its lifespan."""

from __future__ import annotations

import json

import asyncpg

# What a query raises when PostgreSQL cannot be reached (stopped, restarting, the connection
# cut), as opposed to a query it refused: worth retrying later, and a 503 to a client.
UNREACHABLE: tuple[type[Exception], ...] = (
    ConnectionError,  # refused, reset
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,  # shutting down, starting up
    asyncpg.InterfaceError,  # the connection was closed under the query
)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def create_pool(dsn: str, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections read and write JSON columns as Python objects."""
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection
    )
    assert pool is not None  # create_pool only returns None when not awaited
    return pool
