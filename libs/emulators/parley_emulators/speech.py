"""What the TTS emulators share: the "speech" they synthesise (a deterministic tone whose
duration follows the text, so a test can check from the bytes alone that the length, rate
and speed it asked for were honoured) and streaming it paced, recording when the client
went away."""

from __future__ import annotations

import asyncio
import json
import math
import sys
from array import array
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from typing import Any

from starlette.requests import Request

from parley_emulators.base import EmulatorState, Moment, Recorded
from parley_emulators.spoken import record

__all__ = [
    "CHUNK_MS",
    "MS_PER_CHAR",
    "Dropped",
    "chunks",
    "collect",
    "collect_until_error",
    "paced",
    "record_json",
    "samples_for",
    "tone",
]

MS_PER_CHAR = 10.0  # of audio per character of text, at speed 1
CHUNK_MS = 40  # of audio per streamed chunk
_FREQUENCY_HZ = 440.0
_AMPLITUDE = 3000


class Dropped(Exception):
    """Raised inside a streaming body to cut the connection mid-stream (a "drop" fault)."""


def samples_for(text: str, rate: int, speed: float = 1.0) -> int:
    """How many samples the emulators make for ``text`` at ``rate`` Hz and ``speed``."""
    return round(rate * len(text) * MS_PER_CHAR / 1000 / speed)


def tone(text: str, rate: int, speed: float = 1.0, frequency_hz: float = _FREQUENCY_HZ) -> bytes:
    """PCM16 LE mono: ``samples_for(text, rate, speed)`` samples of a sine (440 Hz, or a
    cloned voice's own ``frequency_hz``)."""
    step = 2 * math.pi * frequency_hz / rate
    count = samples_for(text, rate, speed)
    samples = array("h", (round(_AMPLITUDE * math.sin(i * step)) for i in range(count)))
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


def chunks(pcm: bytes, rate: int, chunk_ms: int = CHUNK_MS) -> Iterator[bytes]:
    """``pcm`` cut into ``chunk_ms`` pieces (whole samples)."""
    size = max(2, rate * chunk_ms // 1000 * 2)
    for start in range(0, len(pcm), size):
        yield pcm[start : start + size]


async def paced(
    state: EmulatorState,
    recorded: Recorded,
    pieces: Iterator[bytes],
    *,
    drop_after: int | None = None,
) -> AsyncIterator[bytes]:
    """A streaming HTTP body: ``pieces`` with ``state.stream_delay_s`` between them. The
    client closing the connection early is recorded with ``state.mark_closed``; with
    ``drop_after`` the connection is cut after that many pieces."""
    try:
        for index, piece in enumerate(pieces):
            if drop_after is not None and index == drop_after:
                raise Dropped("connection dropped by a test fault")
            yield piece
            recorded.mark(Moment.FIRST_BYTE)
            await asyncio.sleep(state.stream_delay_s)
    except (asyncio.CancelledError, GeneratorExit):
        state.mark_closed(recorded)  # the client went away mid-stream
        raise


async def record_json(state: EmulatorState, request: Request) -> Recorded:
    """Record a request whose body is JSON (kept as text when it does not parse)."""
    raw = await request.body()
    try:
        body: Any = json.loads(raw) if raw else None
    except ValueError:
        body = raw.decode("utf-8", "replace")
    return record(state, request, body)


async def collect(stream: AsyncIterator[bytes]) -> bytes:
    """Everything ``stream`` yields, joined (for tests)."""
    return b"".join([chunk async for chunk in stream])


async def collect_until_error(stream: AsyncIterable[Any]) -> tuple[list[Any], Exception | None]:
    """What ``stream`` yields before it fails, and the failure (None if it did not)."""
    received: list[Any] = []
    try:
        async for item in stream:
            received.append(item)
    except Exception as exc:
        return received, exc
    return received, None
