"""Helpers for Parley's tests (and for users testing code built on Parley)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
from starlette.types import ASGIApp

from parley_common.contracts.bus import SessionAssign
from parley_common.contracts.session import SessionConfig
from parley_common.observability.health import http_server
from parley_common.workers import SessionWork

PollCheck = Callable[[], Awaitable[bool]] | Callable[[], bool]


async def eventually(check: PollCheck, within_s: float = 10.0, every_s: float = 0.02) -> None:
    """Wait until ``check()`` is true, polling: for state that has no event to await, such as
    a database row or another process's view. Raises TimeoutError when it stays false."""
    async with asyncio.timeout(within_s):
        while True:
            result = check()
            if result if isinstance(result, bool) else await result:
                return
            await asyncio.sleep(every_s)


@contextlib.asynccontextmanager
async def loop_gaps(every_s: float = 0.005) -> AsyncIterator[list[float]]:
    """Measure how late the event loop runs: inside the block, a ticker wakes every
    ``every_s`` and records the actual gap; a blocking call shows up as one long gap."""
    gaps: list[float] = []

    async def tick() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(every_s)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    try:
        yield gaps
    finally:
        ticker.cancel()


@contextlib.asynccontextmanager
async def serving(app: ASGIApp, port: int) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1:``port`` in this event loop; yields its base URL."""
    server = http_server(app, "127.0.0.1", port)
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started, 30)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


class _HeldSession:
    def busy(self) -> bool:
        return False

    async def run(self) -> None:
        await asyncio.Event().wait()


async def hold_session(assign: SessionAssign) -> SessionWork:
    """A session factory for test workers: takes the session and does nothing with it."""
    return _HeldSession()


async def session_row(pool: asyncpg.Pool, config: SessionConfig, user_id: str = "test") -> str:
    """Insert an active ``voice_sessions`` row (what the gateway does at session start) for a
    test that runs a worker's session directly; returns its id."""
    sid = uuid.uuid4()
    await pool.execute(
        """INSERT INTO voice_sessions (id, user_id, config, stt_provider, llm_provider,
               tts_provider, response_style, interrupt_sensitivity)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        sid,
        user_id,
        config.model_dump(mode="json"),
        config.stt_provider.value,
        config.llm_provider.value,
        config.tts_provider.value,
        config.response_style.value,
        config.interrupt_sensitivity.value,
    )
    return str(sid)
