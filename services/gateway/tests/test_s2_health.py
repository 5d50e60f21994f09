"""S2's health and statistics routes, against a gateway that requires tokens, with real
workers whose heartbeats come and go."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
import websockets
from pydantic import SecretStr

from parley_common.bus import Bus, MessageMeta, Received
from parley_common.contracts import subjects
from parley_common.contracts.bus import ProvidersReply, ProviderStatus
from parley_common.testing import eventually, hold_session, serving
from parley_common.tokens import AuthSettings, mint_token, new_secret
from parley_common.workers import SessionWorker
from parley_gateway.app import create_app
from parley_gateway.sessions.lifecycle import STREAMING_SERVICES
from parley_gateway.settings import GatewaySettings
from parley_launcher.embedded.process import free_port

VOICE = "/api/v1/voice/health"
SOCKETS = "/api/v1/ws/voice/health"
STATS = "/api/v1/ws/voice/sessions/stats"
ADMIN = ["parley:admin"]


class Workers:
    """One session-holding worker per streaming service, each stoppable on its own."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.workers: dict[str, SessionWorker] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, service: str) -> None:
        worker = SessionWorker(service, f"{service}-health-test", self.bus, hold_session)
        self.workers[service] = worker
        self.tasks[service] = asyncio.create_task(worker.run())

    async def stop(self, service: str) -> None:
        task = self.tasks.pop(service)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.fixture(scope="module")
async def held(nats_url: str) -> AsyncIterator[Workers]:
    bus = await Bus.connect(nats_url, name="health-workers")
    workers = Workers(bus)
    for service in STREAMING_SERVICES:
        workers.start(service)
    yield workers
    for service in list(workers.tasks):
        await workers.stop(service)
    await bus.close()


@pytest.fixture(scope="module")
async def secured(
    nats_url: str, database_url: str, held: Workers
) -> AsyncIterator[tuple[str, str]]:
    """(base URL, HS256 secret) of a gateway that requires tokens."""
    port = free_port()
    secret = new_secret()
    settings = GatewaySettings(
        nats_url=nats_url, database_url=SecretStr(database_url), http_port=port
    )
    async with serving(create_app(settings, AuthSettings(secret=SecretStr(secret))), port) as url:
        yield url, secret


def _headers(secret: str, user: str = "alice", scopes: list[str] | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(secret, user, scopes=scopes)}"}


@pytest.fixture
async def client(secured: tuple[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    url, secret = secured
    async with httpx.AsyncClient(base_url=url, timeout=10, headers=_headers(secret)) as c:
        yield c


async def _healthy(client: httpx.AsyncClient) -> dict[str, Any]:
    body: dict[str, Any] = {}

    async def ok() -> bool:
        nonlocal body
        response = await client.get(VOICE)
        body = response.json()
        return response.status_code == 200

    await eventually(ok)
    return body


async def test_health_needs_a_token_and_stats_the_admin_scope(secured: tuple[str, str]) -> None:
    url, secret = secured
    async with httpx.AsyncClient(base_url=url, timeout=10) as anonymous:
        for path in (VOICE, SOCKETS, STATS):
            response = await anonymous.get(path)
            assert response.status_code == 401, path
            assert response.json()["error"]["code"] == "token_missing"
        user, admin = _headers(secret), _headers(secret, "root", ADMIN)
        assert (await anonymous.get(SOCKETS, headers=user)).status_code == 200
        assert (await anonymous.get(VOICE, headers=user)).status_code in (200, 503)
        refused = await anonymous.get(STATS, headers=user)
        assert refused.status_code == 403
        assert "active_sessions" not in refused.text
        assert (await anonymous.get(STATS, headers=admin)).status_code == 200


async def test_voice_health_reports_each_service_and_its_providers(
    client: httpx.AsyncClient, nats_url: str
) -> None:
    body = await _healthy(client)
    assert body["status"] == "ok"
    assert body["checks"] == {
        "nats": "ok",
        "postgres": "ok",
        "stt": "ok",
        "llm": "ok",
        "tts": "ok",
    }
    for service in STREAMING_SERVICES:
        assert body[service]["workers"] == 1
        assert body[service]["providers"] is None  # these workers do not answer the query
    # A worker that answers the providers query has its readiness reported.
    answering = await Bus.connect(nats_url, name="providers-answer")
    offered = [
        ProviderStatus(name="local", available=True),
        ProviderStatus(name="deepgram", available=False, reason="no API key"),
    ]

    async def reply(msg: Received) -> None:
        await answering.respond(
            msg, ProvidersReply(service="stt", providers=tuple(offered)), MessageMeta("")
        )

    await answering.subscribe(subjects.query("stt", "providers"), reply)
    await answering.flush()
    try:
        body = await _healthy(client)
        assert body["stt"]["providers"] == [p.model_dump() for p in offered]
        assert body["tts"]["providers"] is None
    finally:
        await answering.close()


async def test_voice_health_is_503_while_a_service_has_no_live_worker(
    client: httpx.AsyncClient, held: Workers
) -> None:
    await _healthy(client)
    await held.stop("tts")
    try:

        async def degraded() -> bool:
            response = await client.get(VOICE)
            return response.status_code == 503 and response.json()["checks"]["tts"] == "fail"

        # A worker counts as gone three heartbeat intervals after its last one.
        await eventually(degraded, within_s=10)
        body = (await client.get(VOICE)).json()
        assert body["status"] == "degraded"
        assert body["tts"] == {"status": "fail", "workers": 0, "providers": None}
        assert body["stt"]["status"] == "ok"
    finally:
        held.start("tts")
    assert (await _healthy(client))["tts"]["workers"] == 1


async def test_socket_health_counts_this_gateways_open_websockets(
    client: httpx.AsyncClient, secured: tuple[str, str]
) -> None:
    url, secret = secured
    token = mint_token(secret, "alice")
    sids = [(await client.post("/api/v1/sessions", json={})).json()["id"] for _ in range(2)]

    async def connections(expected: int) -> None:
        async def seen() -> bool:
            body = (await client.get(SOCKETS)).json()
            return bool(body["active_connections"] == expected)

        await eventually(seen)

    base = (await client.get(SOCKETS)).json()["active_connections"]
    async with contextlib.AsyncExitStack() as stack:
        sockets = []
        for sid in sids:
            ws_url = url.replace("http://", "ws://") + f"/api/v1/sessions/{sid}/ws?token={token}"
            ws = await stack.enter_async_context(websockets.connect(ws_url))
            assert json.loads(await ws.recv())["type"] == "ready"
            sockets.append(ws)
        await connections(base + 2)
        body = (await client.get(SOCKETS)).json()
        assert body["status"] == "ok"
        assert body["checks"] == {"nats": "ok", "postgres": "ok"}
        assert body["gateway"].startswith("gateway-")
        await sockets[0].close()
        await connections(base + 1)
    await connections(base)
    for sid in sids:
        await client.post(f"/api/v1/sessions/{sid}/end")


async def test_stats_count_every_active_session_and_each_workers_load(
    client: httpx.AsyncClient, secured: tuple[str, str], held: Workers, pool: asyncpg.Pool
) -> None:
    _, secret = secured
    admin = _headers(secret, "root", ADMIN)
    await _healthy(client)
    sids = [(await client.post("/api/v1/sessions", json={})).json()["id"] for _ in range(3)]

    async def stats() -> dict[str, Any]:
        response = await client.get(STATS, headers=admin)
        assert response.status_code == 200
        body: dict[str, Any] = response.json()
        return body

    async def loads_match() -> bool:
        body = await stats()
        return all(
            [w["sessions"] for w in body[s]["workers"]] == [len(held.workers[s].sessions)]
            and body[s]["sessions"] == len(held.workers[s].sessions)
            for s in STREAMING_SERVICES
        )

    await eventually(loads_match)
    body = await stats()
    assert body["stt"]["workers"][0]["worker_id"] == "stt-health-test"
    assert body["stt"]["sessions"] >= 3
    assert 0 <= body["stt"]["workers"][0]["last_seen_s"] < 3
    active = await pool.fetchval("SELECT count(*) FROM voice_sessions WHERE status = 'active'")
    assert body["active_sessions"] == active
    assert body["idle_timeout_s"] == 300
    await client.post(f"/api/v1/sessions/{sids[0]}/end")
    after = await stats()
    assert after["active_sessions"] == active - 1
    await eventually(loads_match)
    assert (await stats())["llm"]["sessions"] == body["llm"]["sessions"] - 1
    for sid in sids[1:]:
        await client.post(f"/api/v1/sessions/{sid}/end")
