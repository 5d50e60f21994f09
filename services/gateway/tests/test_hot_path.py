"""The gateway's per-frame path: served on uvloop without permessage-deflate, and native
audio sent in chunks of the length the connection chose."""

from __future__ import annotations

import asyncio
import contextlib
import time

import uvicorn
import websockets
from starlette.types import Receive, Scope, Send

from parley_common.testing import eventually
from parley_gateway.__main__ import server_config
from parley_gateway.realtime.playout import Playout, TurnAudio
from parley_gateway.settings import GatewaySettings
from parley_launcher.embedded.process import free_port

RATE = 24_000


async def _echo(scope: Scope, receive: Receive, send: Send) -> None:
    """A WebSocket that sends back what it gets (the gateway's app is not needed here)."""
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while (message := await receive())["type"] == "websocket.receive":
        await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})


async def test_the_server_runs_on_uvloop_and_declines_permessage_deflate() -> None:
    port = free_port()
    config = server_config(_echo, GatewaySettings(http_host="127.0.0.1", http_port=port), {})
    factory = config.get_loop_factory()
    assert factory is not None
    assert factory.__module__.startswith("uvloop")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: server.started, 10)
        # The client offers deflate (websockets does by default); the server must not take it.
        async with websockets.connect(f"ws://127.0.0.1:{port}/") as ws:
            assert ws.response is not None
            assert "Sec-WebSocket-Extensions" not in ws.response.headers
            await ws.send(b"\x01\x02" * 320)
            assert await ws.recv() == b"\x01\x02" * 320
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(serving, 10)


async def test_native_audio_goes_out_in_chunks_of_the_chosen_length_at_the_lead() -> None:
    sent: list[tuple[float, bytes]] = []

    async def send(frame: bytes) -> None:
        sent.append((time.perf_counter(), frame))

    async def nothing(_: TurnAudio) -> None:
        return None

    lead_ms, chunk_ms, audio_ms = 200, 80, 1000
    playout = Playout(send, nothing, nothing, nothing, lead_ms, frame_ms=chunk_ms)
    task = asyncio.create_task(playout.run())
    try:
        playout.add(1, b"\x07" * (RATE * 2 * audio_ms // 1000), RATE, 0, 10)
        await eventually(lambda: sum(len(f) for _, f in sent) == RATE * 2 * audio_ms // 1000, 5)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    chunk_bytes = RATE * 2 * chunk_ms // 1000
    # 12 whole chunks and the 40 ms left over.
    assert [len(f) for _, f in sent] == [chunk_bytes] * 12 + [chunk_bytes // 2]
    t0 = sent[0][0]
    for i, (at, _) in enumerate(sent):
        # Larger chunks, same rule: none is sent while the client is more than the lead ahead.
        assert i * chunk_ms <= lead_ms + (at - t0) * 1000 + 5
