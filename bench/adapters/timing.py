"""What every case of ``bench.providers`` shares: the measures of its turns, the emulator's
own time read from its marks, and serving an emulator while counting the connections it got.

Client and emulator share one event loop, so when one runs the other waits: the adapter's
time minus the emulator's time is what the adapter (and the local server's framing) took.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from starlette.types import ASGIApp, Receive, Scope, Send

from parley_common.testing import serving
from parley_emulators.base import Moment, Recorded
from parley_launcher.embedded.process import free_port

__all__ = [
    "DEADLINE_S",
    "Case",
    "Closable",
    "Connections",
    "Kind",
    "Served",
    "Timings",
    "Turn",
    "adapter_on",
    "emulator",
    "emulator_s",
    "first_then_rest",
    "timed",
]

DEADLINE_S = 5.0  # for any one step of a turn; the emulators answer in microseconds
Kind = Literal["stt", "llm", "tts", "floor"]
T = TypeVar("T")


@dataclass
class Timings:
    """One adapter's turns: per metric, (adapter's seconds, emulator's seconds) each turn."""

    by_metric: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    def add(self, metric: str, adapter_s: float, emulator_s: float) -> None:
        """Record one turn's measure of ``metric``."""
        self.by_metric.setdefault(metric, []).append((adapter_s, emulator_s))


Turn = Callable[[Timings], Awaitable[None]]


class Connections:
    """An ASGI wrapper that counts the client connections (address, port) an app served."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: set[tuple[str, int]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] in ("http", "websocket") and client is not None:
            self.seen.add((str(client[0]), int(client[1])))
        await self.app(scope, receive, send)


@dataclass(frozen=True)
class Served:
    """A running emulator's turn to repeat, and the connections it counts."""

    turn: Turn
    connections: Connections


@dataclass(frozen=True)
class Case:
    """One adapter: ``serve`` runs its emulator, builds the adapter and yields its turn."""

    kind: Kind
    adapter: str
    serve: Callable[[], contextlib.AbstractAsyncContextManager[Served]]


class Closable(Protocol):
    """An adapter owning a client to close."""

    async def aclose(self) -> None: ...


@contextlib.asynccontextmanager
async def emulator(app: ASGIApp) -> AsyncIterator[tuple[str, Connections]]:
    """Serve ``app`` on a free local port in this loop: its URL and its connection count."""
    counted = Connections(app)
    async with serving(counted, free_port()) as url:
        yield url, counted


C = TypeVar("C", bound=Closable)


@contextlib.asynccontextmanager
async def adapter_on(
    app: ASGIApp, build: Callable[[str], C], turn: Callable[[C, Timings], Awaitable[None]]
) -> AsyncIterator[Served]:
    """Serve ``app``, build one adapter against its URL for every turn (as a worker keeps
    one) and yield ``turn`` on it; the adapter's client is closed afterwards."""
    async with emulator(app) as (url, connections):
        adapter = build(url)
        try:
            yield Served(lambda timings: turn(adapter, timings), connections)
        finally:
            await adapter.aclose()


def emulator_s(recorded: Recorded, start: Moment | None, end: Moment) -> float:
    """Seconds the emulator itself took from ``start`` (None: the request was read) to
    ``end``, as it noted them on ``recorded``."""
    missing = [m for m in (start, end) if m is not None and m not in recorded.marks]
    if missing:
        raise RuntimeError(f"the emulator noted no {missing[0].value} on {recorded.path}")
    began = recorded.opened_at if start is None else recorded.marks[start]
    return recorded.marks[end] - began


async def timed(step: Awaitable[T]) -> tuple[T, float]:
    """``step``'s result and when it came (perf_counter), within the deadline."""
    result = await asyncio.wait_for(step, DEADLINE_S)
    return result, time.perf_counter()


async def first_then_rest(items: AsyncGenerator[Any, None]) -> float:
    """When ``items`` yielded its first item (perf_counter); the rest is read, as Parley's
    sessions read a whole answer, and the generator closed."""
    try:
        _, first_at = await timed(anext(items))
        async for _ in items:
            pass
    finally:
        await items.aclose()
    return first_at
