"""The session bridge on the real bus, with an in-memory WebSocket: the session's audio
clock continues across reconnects, latency goes to the client without a STATUS echo,
warnings are not failed voice processing, and a long call keeps a bounded state."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, cast

import asyncpg
import pytest
from fastapi import WebSocket
from pydantic import SecretStr
from starlette.websockets import WebSocketState

from parley_common.bus import Bus, MessageMeta, Received
from parley_common.bus.audio import AudioInMeta, AudioOutMeta
from parley_common.contracts import subjects
from parley_common.contracts.bus import (
    Interrupt,
    InterruptReason,
    LatencyStages,
    ReplyDelta,
    ReplyDone,
    ServiceError,
    TurnLatency,
    UserText,
)
from parley_common.contracts.session import SessionConfig
from parley_common.contracts.subjects import SessionChannel
from parley_common.runtime import Runtime
from parley_common.testing import eventually
from parley_gateway.realtime.bridge import RECENT_TURNS, SessionBridge
from parley_gateway.realtime.latency import RECENT_TURNS as LATENCY_TURNS
from parley_gateway.realtime.playout import KEEP_FINISHED_TURNS
from parley_gateway.routes.deps import Gateway
from parley_gateway.sessions.lifecycle import SessionLifecycle
from parley_gateway.sessions.store import SessionRecord, SessionStore
from parley_gateway.settings import GatewaySettings


class FakeSocket:
    """A client connection held in memory: what the client sends is queued, what Parley
    sends is kept."""

    def __init__(self) -> None:
        self.application_state = WebSocketState.CONNECTED
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        return await self.inbox.get()

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.application_state = WebSocketState.DISCONNECTED

    def audio(self, pcm: bytes) -> None:
        self.inbox.put_nowait({"type": "websocket.receive", "bytes": pcm})

    def text(self, message: dict[str, Any]) -> None:
        self.inbox.put_nowait({"type": "websocket.receive", "text": json.dumps(message)})

    def leave(self) -> None:
        self.inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})

    def events(self, kind: str) -> list[dict[str, Any]]:
        texts = [json.loads(m["text"]) for m in self.sent if "text" in m]
        return [e for e in texts if e.get("type") == kind]


@pytest.fixture
async def gateway(bus: Bus, pool: asyncpg.Pool, database_url: str) -> Gateway:
    settings = GatewaySettings(database_url=SecretStr(database_url), audio_lead_ms=250)
    runtime = Runtime("gateway", "gateway-test", settings, bus, pool, asyncio.Event())
    store = SessionStore(pool)
    return Gateway(settings, runtime, store, SessionLifecycle(store, bus, 2.0))


@pytest.fixture
async def record(gateway: Gateway) -> SessionRecord:
    return await gateway.store.create("bridge-test", None, SessionConfig())


@pytest.fixture
async def connect(gateway: Gateway, record: SessionRecord) -> AsyncIterator[Any]:
    tasks: list[asyncio.Task[None]] = []

    async def open_bridge() -> tuple[SessionBridge, FakeSocket, asyncio.Task[None]]:
        socket = FakeSocket()
        bridge = SessionBridge(gateway, record, cast(WebSocket, socket))
        task = asyncio.create_task(bridge.run())
        tasks.append(task)
        await eventually(lambda: bool(socket.events("ready")))
        return bridge, socket, task

    yield open_bridge
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def publish(
    bus: Bus,
    sid: str,
    channel: SessionChannel,
    msg: Any,
    turn: int = 0,
    extra: dict[str, str] | None = None,
) -> None:
    meta = MessageMeta(sid, turn_id=turn, extra=extra or {})
    await bus.publish(subjects.session(sid, channel), msg, meta)


async def test_audio_carries_the_session_clock_across_reconnects(
    bus: Bus, connect: Any, record: SessionRecord
) -> None:
    offsets: list[AudioInMeta] = []

    async def on_audio(msg: Received) -> None:
        offsets.append(AudioInMeta.parse(msg.meta.extra))

    await bus.subscribe(subjects.session(record.id, SessionChannel.AUDIO_IN), on_audio)
    _, first, task = await connect()
    for _ in range(5):
        first.audio(bytes(640))
    first.text({"type": "audio_start"})
    first.leave()
    await task
    _, second, _ = await connect()  # the client reconnects to the same session
    second.audio(bytes(640))
    await eventually(lambda: len(offsets) == 7)

    assert [m.offset for m in offsets] == [0, 320, 640, 960, 1280, 1600, 1600]
    assert offsets[5].push_to_talk == "start"


async def test_latency_reaches_the_client_and_is_not_echoed_on_status(
    bus: Bus, connect: Any, record: SessionRecord
) -> None:
    status: list[bytes] = []

    async def on_status(msg: Received) -> None:
        status.append(msg.data)

    _, socket, _ = await connect()
    await bus.subscribe(subjects.session(record.id, SessionChannel.STATUS), on_status)
    await publish(bus, record.id, SessionChannel.REPLY, UserText(text="hi", typed=True), 1)
    await publish(bus, record.id, SessionChannel.REPLY, ReplyDelta(text="Hello"), 1)
    stages = LatencyStages(llm_first_token_ms=42.0)
    await publish(bus, record.id, SessionChannel.STATUS, TurnLatency(turn_id=1, stages=stages), 1)
    await eventually(lambda: bool(socket.events("metrics")) and bool(socket.events("response")))
    socket.text({"type": "interrupt"})
    await eventually(lambda: any(e["data"].get("interrupt_ms") for e in socket.events("metrics")))

    merged = socket.events("metrics")[-1]["data"]
    assert merged["turn_id"] == 1
    assert merged["llm_first_token_ms"] == 42.0
    await asyncio.sleep(0.1)
    assert len(status) == 1, "the gateway publishes none of its own latency on STATUS"


async def test_a_warning_is_not_failed_voice_processing(
    bus: Bus, connect: Any, record: SessionRecord
) -> None:
    _, socket, _ = await connect()
    warning = ServiceError(
        service="stt", code="turn_limit_reached", message="long turn", severity="warning"
    )
    failure = ServiceError(service="llm", code="provider_failed", message="down", provider="x")
    await publish(bus, record.id, SessionChannel.STATUS, warning)
    await publish(bus, record.id, SessionChannel.STATUS, failure)
    await eventually(lambda: len(socket.events("error")) == 2)

    first, second = (e["data"] for e in socket.events("error"))
    assert (first["code"], first["severity"]) == ("stt_turn_limit_reached", "warning")
    assert (second["code"], second["severity"], second["provider"]) == (
        "llm_provider_failed",
        "error",
        "x",
    )
    assert [e["error"] for e in socket.events("voice_processing_error")] == ["down"]


async def test_five_hundred_turns_keep_the_bridge_state_bounded(
    bus: Bus, connect: Any, record: SessionRecord
) -> None:
    bridge, socket, _ = await connect()
    chunk = bytes(96)  # 2 ms at 24 kHz: the turns play out quickly
    out = AudioOutMeta(24000, 0, 3)
    for turn in range(1, 501):
        await publish(bus, record.id, SessionChannel.REPLY, UserText(text="q", typed=True), turn)
        await publish(bus, record.id, SessionChannel.REPLY, ReplyDelta(text="Ok."), turn)
        stages = LatencyStages(llm_first_token_ms=float(turn))
        latency = TurnLatency(turn_id=turn, stages=stages)
        await publish(bus, record.id, SessionChannel.STATUS, latency, turn)
        await publish(bus, record.id, SessionChannel.AUDIO_OUT, chunk, turn, out.headers())
        if turn % 3 == 0:
            interrupt = Interrupt(turn_id=turn, reason=InterruptReason.BARGE_IN)
            await publish(bus, record.id, SessionChannel.INTERRUPT, interrupt, turn)
        await publish(bus, record.id, SessionChannel.REPLY, ReplyDone(text="Ok."), turn)
        end = AudioOutMeta(24000, end=True)
        await publish(bus, record.id, SessionChannel.AUDIO_OUT, b"", turn, end.headers())
        if turn % 25 == 0:  # let playout (real time) catch up with the flood of turns
            await eventually(lambda t=turn: len(socket.events("transcript")) >= t, 10)
            await eventually(lambda: not bridge.playout.is_playing(), 10)
            assert len(bridge.playout.turns) <= KEEP_FINISHED_TURNS + 1
        assert bridge.tracked_turns <= RECENT_TURNS
        assert bridge.latency.tracked_turns <= LATENCY_TURNS
    await eventually(lambda: len(socket.events("interrupted")) == 166, 10)
