"""Idle sessions end: no audio and no message for GATEWAY_IDLE_TIMEOUT_S. Two real gateways
on one database, with short timeouts: A reaps after 1.2 s, B after 2.4 s (so that A is the
one that ends B's sessions, and B must say why to its own clients)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
import websockets
from fastapi import FastAPI
from pydantic import SecretStr
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from parley_common.bus import Bus, Received
from parley_common.contracts import subjects
from parley_common.contracts.bus import SessionEnd, control_adapter
from parley_common.contracts.subjects import SessionChannel
from parley_common.contracts.ws import CLOSE_SESSION_ENDED
from parley_common.testing import eventually, serving
from parley_common.tokens import AuthSettings
from parley_common.workers import SessionWorker
from parley_gateway.app import create_app
from parley_gateway.routes.deps import Gateway
from parley_gateway.sessions.idle import IdleReaper, idle_reason
from parley_gateway.settings import GatewaySettings
from parley_launcher.embedded.process import free_port

TIMEOUT_A = 1.2
TIMEOUT_B = 2.4
FRAME = bytes(640)  # 20 ms of silence: audio is audio, whatever it says


@dataclass(frozen=True)
class Served:
    url: str
    app: FastAPI

    @property
    def gateway(self) -> Gateway:
        gateway: Gateway = self.app.state.gateway
        return gateway

    def ws(self, sid: str) -> str:
        return self.url.replace("http://", "ws://") + f"/api/v1/sessions/{sid}/ws"


@contextlib.asynccontextmanager
async def _gateway(
    nats_url: str, database_url: str, idle_timeout_s: float
) -> AsyncIterator[Served]:
    port = free_port()
    settings = GatewaySettings(
        nats_url=nats_url,
        database_url=SecretStr(database_url),
        http_port=port,
        idle_timeout_s=idle_timeout_s,
    )
    app = create_app(settings, AuthSettings.model_construct())
    async with serving(app, port) as url:
        yield Served(url, app)


@pytest.fixture(scope="module")
async def gw_a(
    nats_url: str, database_url: str, workers: dict[str, SessionWorker]
) -> AsyncIterator[Served]:
    async with _gateway(nats_url, database_url, TIMEOUT_A) as served:
        yield served


@pytest.fixture(scope="module")
async def gw_b(nats_url: str, database_url: str, gw_a: Served) -> AsyncIterator[Served]:
    async with _gateway(nats_url, database_url, TIMEOUT_B) as served:
        yield served


async def _start(served: Served) -> str:
    async with httpx.AsyncClient(base_url=served.url, timeout=10) as client:
        response = await client.post("/api/v1/sessions", json={})
        assert response.status_code == 201
        sid: str = response.json()["id"]
        return sid


async def _status(pool: asyncpg.Pool, sid: str) -> str:
    status: str = await pool.fetchval(
        "SELECT status FROM voice_sessions WHERE id = $1", uuid.UUID(sid)
    )
    return status


async def _closed(ws: ClientConnection, within_s: float) -> tuple[int, str, float]:
    """Read until the server closes; (code, reason, when)."""

    async def read_all() -> None:
        while True:
            await ws.recv()

    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(read_all(), within_s)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason, time.monotonic()


async def _keep_busy(ws: ClientConnection, seconds: float, *, typed: bool) -> float:
    """Use the session for ``seconds``: audio frames, or typed messages; returns when the
    last one was sent."""
    deadline = time.monotonic() + seconds
    while True:
        if typed:
            await ws.send(json.dumps({"type": "text_message", "text": "still here"}))
        else:
            await ws.send(FRAME)
        sent = time.monotonic()
        if sent >= deadline:
            return sent
        await asyncio.sleep(0.1)


async def test_a_session_never_connected_ends_once_idle_and_its_workers_let_go(
    gw_a: Served, pool: asyncpg.Pool, workers: dict[str, SessionWorker]
) -> None:
    created = time.monotonic()
    sid = await _start(gw_a)
    assert all(sid in w.sessions for w in workers.values())
    await asyncio.sleep(TIMEOUT_A / 2)
    assert await _status(pool, sid) == "active"

    async def ended() -> bool:
        return await _status(pool, sid) == "ended"

    await eventually(ended, within_s=TIMEOUT_A * 4)
    assert time.monotonic() - created >= TIMEOUT_A
    # Ended through the lifecycle: each worker was told and dropped the session's task.
    await eventually(lambda: all(sid not in w.sessions for w in workers.values()), within_s=5)
    async with httpx.AsyncClient(base_url=gw_a.url) as client:
        view = (await client.get(f"/api/v1/sessions/{sid}")).json()
    assert view["status"] == "ended"
    assert view["duration_seconds"] >= TIMEOUT_A


async def test_an_open_socket_without_audio_is_closed_4410_saying_it_was_idle(
    gw_a: Served, pool: asyncpg.Pool
) -> None:
    sid = await _start(gw_a)
    async with websockets.connect(gw_a.ws(sid)) as ws:
        opened = time.monotonic()
        assert json.loads(await ws.recv())["type"] == "ready"

        async def ping() -> None:
            # Keepalives show a tab is open, not that anyone is talking.
            while True:
                await ws.send(json.dumps({"type": "ping", "ts": 1}))
                await asyncio.sleep(0.2)

        pinger = asyncio.create_task(ping())
        try:
            code, reason, at = await _closed(ws, TIMEOUT_A * 5)
        finally:
            pinger.cancel()
            await asyncio.gather(pinger, return_exceptions=True)
    assert code == CLOSE_SESSION_ENDED
    assert reason == idle_reason(TIMEOUT_A)
    assert "idle" in reason
    assert at - opened >= TIMEOUT_A
    assert await _status(pool, sid) == "ended"


@pytest.mark.parametrize("typed", [False, True], ids=["audio", "messages"])
async def test_audio_or_messages_keep_a_session_alive(
    gw_a: Served, pool: asyncpg.Pool, typed: bool
) -> None:
    sid = await _start(gw_a)
    async with websockets.connect(gw_a.ws(sid)) as ws:
        await ws.recv()  # ready
        quiet_since = await _keep_busy(ws, TIMEOUT_A * 2, typed=typed)
        assert await _status(pool, sid) == "active"
        code, reason, at = await _closed(ws, TIMEOUT_A * 5)
    assert (code, reason) == (CLOSE_SESSION_ENDED, idle_reason(TIMEOUT_A))
    assert at - quiet_since >= TIMEOUT_A


async def test_another_gateways_reaper_sees_activity_here_and_this_gateway_says_why(
    gw_a: Served, gw_b: Served, pool: asyncpg.Pool
) -> None:
    sid = await _start(gw_b)
    async with websockets.connect(gw_b.ws(sid)) as ws:
        await ws.recv()  # ready
        # A ends sessions idle for 1.2 s in the database; B writes its activity there.
        quiet_since = await _keep_busy(ws, TIMEOUT_A * 2, typed=False)
        assert await _status(pool, sid) == "active"
        code, reason, at = await _closed(ws, TIMEOUT_B * 3)
    # A ended it (before B's own 2.4 s), B closed its socket with A's reason.
    assert (code, reason) == (CLOSE_SESSION_ENDED, idle_reason(TIMEOUT_A))
    assert TIMEOUT_A <= at - quiet_since < TIMEOUT_B + 1.0
    assert await _status(pool, sid) == "ended"


async def test_reapers_racing_end_a_session_once(
    gw_a: Served, gw_b: Served, pool: asyncpg.Pool, nats_url: str
) -> None:
    sid = await _start(gw_a)
    observer = await Bus.connect(nats_url, name="idle-observer")
    ends: list[str] = []
    releases: list[SessionEnd] = []

    async def on_ended(msg: Received) -> None:
        if json.loads(msg.data)["session_id"] == sid:
            ends.append(sid)

    async def on_control(msg: Received) -> None:
        if isinstance(end := msg.decode(control_adapter), SessionEnd):
            releases.append(end)

    await observer.subscribe(subjects.event("session.ended"), on_ended)
    await observer.subscribe(subjects.session(sid, SessionChannel.CONTROL), on_control)
    await observer.flush()
    try:
        await pool.execute(
            "UPDATE voice_sessions SET last_activity_at = now() - interval '1 hour' WHERE id = $1",
            uuid.UUID(sid),
        )
        # Both gateways' reapers run on their own too; these passes add to the race.
        await asyncio.gather(*(IdleReaper(s.gateway).sweep() for s in (gw_a, gw_b, gw_a, gw_b)))
        assert await _status(pool, sid) == "ended"
        await asyncio.sleep(0.5)
        assert ends == [sid]
        assert len(releases) == 1
    finally:
        await observer.close()
