"""Several gateway processes on one port: each binds it with SO_REUSEPORT, and a session
keeps one connection across them (a newer one on another process replaces the older one,
exactly as on one process) and its input-audio clock (a reconnect to another process goes
on from where the last connection left it)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets
from pydantic import SecretStr
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from parley_common.bus import Bus, Received
from parley_common.bus.audio import AudioInMeta
from parley_common.contracts import subjects
from parley_common.contracts.subjects import SessionChannel
from parley_common.contracts.ws import CLOSE_REPLACED
from parley_common.testing import eventually, serving
from parley_common.workers import SessionWorker
from parley_gateway.app import create_app
from parley_gateway.listen import shared_port_socket
from parley_gateway.settings import GatewaySettings
from parley_launcher.embedded.process import free_port


def test_gateway_processes_bind_one_port_but_a_foreign_holder_still_refuses() -> None:
    port = free_port()
    first = shared_port_socket("127.0.0.1", port)
    second = shared_port_socket("127.0.0.1", port)
    try:
        assert first.getsockname() == second.getsockname()
    finally:
        first.close()
        second.close()
    plain = socket.socket()
    plain.bind(("127.0.0.1", port))
    try:
        with pytest.raises(OSError, match="in use"):
            shared_port_socket("127.0.0.1", port)
    finally:
        plain.close()


@pytest.fixture
async def two_gateways(
    nats_url: str, database_url: str, workers: dict[str, SessionWorker]
) -> AsyncIterator[tuple[str, str]]:
    """Two gateways (each with its own connections, as two processes have) on one bus."""
    urls = []
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(2):
            port = free_port()
            settings = GatewaySettings(
                nats_url=nats_url, database_url=SecretStr(database_url), http_port=port
            )
            urls.append(await stack.enter_async_context(serving(create_app(settings), port)))
        yield urls[0], urls[1]


async def _until_closed(ws: ClientConnection) -> None:
    """Read (whatever the connection still gets) until it closes."""
    while True:
        await asyncio.wait_for(ws.recv(), 10)


async def test_a_connection_on_another_gateway_replaces_the_first(
    two_gateways: tuple[str, str],
) -> None:
    url_a, url_b = two_gateways
    async with httpx.AsyncClient(base_url=url_a) as client:
        created = (await client.post("/api/v1/sessions", json={})).json()
    ws_a = created["ws_url"]
    ws_b = ws_a.replace(url_a.removeprefix("http://"), url_b.removeprefix("http://"))
    assert ws_b != ws_a
    async with websockets.connect(ws_a) as first:
        assert json.loads(await first.recv())["type"] == "ready"
        async with websockets.connect(ws_b) as second:
            assert json.loads(await second.recv())["type"] == "ready"
            with pytest.raises(ConnectionClosed) as closed:
                await _until_closed(first)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == CLOSE_REPLACED
            assert closed.value.rcvd.reason == "replaced by a newer connection"
            # The session is the newer connection's now, on the other gateway.
            await second.send(json.dumps({"type": "ping", "ts": 3.0}))
            pong = json.loads(await asyncio.wait_for(second.recv(), 10))
            assert (pong["type"], pong["data"]["ts"]) == ("pong", 3.0)
            # And it stays open: the older claim does not close it in turn.
            await asyncio.sleep(0.5)
            await second.send(json.dumps({"type": "ping", "ts": 4.0}))
            pong = json.loads(await asyncio.wait_for(second.recv(), 10))
            assert pong["data"]["ts"] == 4.0


async def test_a_reconnect_to_another_gateway_continues_the_audio_clock(
    two_gateways: tuple[str, str], bus: Bus
) -> None:
    url_a, url_b = two_gateways
    async with httpx.AsyncClient(base_url=url_a) as client:
        created = (await client.post("/api/v1/sessions", json={})).json()
    sid, ws_a = created["id"], created["ws_url"]
    ws_b = ws_a.replace(url_a.removeprefix("http://"), url_b.removeprefix("http://"))
    offsets: list[int | None] = []

    async def on_audio(msg: Received) -> None:
        offsets.append(AudioInMeta.parse(msg.raw.headers or {}).offset)

    sub = await bus.subscribe(subjects.session(sid, SessionChannel.AUDIO_IN), on_audio)
    frame = bytes(640)  # 20 ms of PCM16 at 16 kHz: 320 samples
    try:
        async with websockets.connect(ws_a) as first:
            await first.recv()  # ready
            for _ in range(5):
                await first.send(frame)
            await eventually(lambda: len(offsets) == 5, 10)
        async with websockets.connect(ws_b) as second:
            await second.recv()
            await second.send(frame)
            await eventually(lambda: len(offsets) == 6, 10)
    finally:
        await sub.unsubscribe()
    assert offsets == [0, 320, 640, 960, 1280, 1600]
