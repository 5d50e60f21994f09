"""A scripted caller: one WebSocket session driven like a person would, recording every event
and audio frame with its arrival time. Used by the conversation tests and the benchmarks."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from bench.audio import FRAME_MS, frames


@dataclass
class Received:
    """One message from the server: a JSON event or a binary audio frame."""

    at: float
    event: dict[str, Any] | None = None
    audio: bytes | None = None
    turn_id: int | None = None  # for audio: the turn of the last audio_start


@dataclass(kw_only=True)
class CallLog:
    """What a call received, in arrival order; waits for what is to come. (The WebSocket
    ``Call`` below and the WebRTC one, ``bench.webrtc_call``, keep theirs in it.)"""

    log: list[Received] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, received: Received) -> None:
        """Log ``received`` and wake whoever waits."""
        self.log.append(received)
        self._changed.set()

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Events received so far, optionally of one type."""
        return [
            r.event
            for r in self.log
            if r.event is not None and (kind is None or r.event.get("type") == kind)
        ]

    def audio(self, turn_id: int | None = None) -> list[Received]:
        """Audio frames received so far, optionally of one turn."""
        return [
            r for r in self.log if r.audio is not None and (turn_id is None or r.turn_id == turn_id)
        ]

    async def wait_for(
        self,
        kind: str,
        where: Callable[[dict[str, Any]], bool] = lambda _: True,
        within_s: float = 30.0,
        after: int = 0,
    ) -> dict[str, Any]:
        """The first event of ``kind`` matching ``where`` (looking from log index ``after``)."""
        async with asyncio.timeout(within_s):
            while True:
                for record in self.log[after:]:
                    event = record.event
                    if event is not None and event.get("type") == kind and where(event):
                        return event
                self._changed.clear()
                await self._changed.wait()

    async def first_audio(self, after: int = 0, within_s: float = 30.0) -> Received:
        """The first audio frame received at log index ``after`` or later."""
        async with asyncio.timeout(within_s):
            while True:
                for record in self.log[after:]:
                    if record.audio is not None:
                        return record
                self._changed.clear()
                await self._changed.wait()

    def arrival(self, event: dict[str, Any]) -> float:
        """When ``event`` arrived."""
        return next(r.at for r in self.log if r.event is event)


@dataclass
class Call(CallLog):
    """A live session: send audio and messages, wait for what comes back."""

    session_id: str
    ws: ClientConnection
    _reader: asyncio.Task[None] | None = None
    _audio_turn: int | None = None

    @classmethod
    async def start(cls, base_url: str, *, token: str | None = None, **config: Any) -> Call:
        """Create a session over REST and connect its WebSocket (with ``token`` when the
        gateway requires one)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx.AsyncClient(base_url=base_url, timeout=30, headers=headers) as client:
            response = await client.post("/api/v1/sessions", json=config)
            response.raise_for_status()
            session = response.json()
        url = session["ws_url"] + (f"?token={token}" if token else "")
        ws = await websockets.connect(url, max_size=2**22)
        call = cls(session["id"], ws)
        call._reader = asyncio.create_task(call._read())
        await call.wait_for("ready")
        return call

    async def _read(self) -> None:
        async for message in self.ws:
            now = time.perf_counter()
            if isinstance(message, bytes):
                self.record(Received(now, audio=message, turn_id=self._audio_turn))
            else:
                event = json.loads(message)
                if event.get("type") == "audio_start":
                    self._audio_turn = event["data"]["turn_id"]
                self.record(Received(now, event=event))

    async def close(self) -> None:
        """Close the connection."""
        await self.ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    async def send_json(self, message: dict[str, Any]) -> None:
        """Send a control message."""
        await self.ws.send(json.dumps(message))

    async def say(self, pcm: bytes, realtime: bool = True, speed: float = 1.0) -> float:
        """Stream ``pcm`` in 20 ms frames, paced like a microphone (``speed`` x real time);
        returns the ``perf_counter`` time at which the last frame was sent."""
        started = time.perf_counter()
        for i, frame in enumerate(frames(pcm)):
            await self.ws.send(frame)
            if realtime:
                due = started + (i + 1) * FRAME_MS / 1000 / speed
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
        return time.perf_counter()
