"""What every provider emulator shares: a record of the traffic it saw, faults a test
switches on, and serving an app on a free local port.

An emulator module exposes ``routes(state) -> list[BaseRoute]`` (so several can be mounted
on one server, e.g. one OpenAI-compatible server for chat, transcription and speech) and an
``app(state)`` convenience. Tests start it with :func:`running` and assert on ``state``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from parley_common.testing import serving
from parley_launcher.embedded.process import free_port

__all__ = ["EmulatorState", "Fault", "Moment", "Recorded", "running", "starlette_app"]


@dataclass(frozen=True)
class Fault:
    """One failure the emulator answers with instead of the normal reply.

    ``status`` is the HTTP status (or, for WebSockets, the close code when ``close`` is set);
    ``body`` the JSON error body in the provider's own shape; ``headers`` e.g. retry-after.
    ``kind`` names non-HTTP faults an emulator understands: ``"malformed"`` (send a frame
    that is not valid for the protocol), ``"drop"`` (cut the connection mid-stream).
    """

    status: int = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    kind: str = "http"


class Moment(StrEnum):
    """Moments of the emulator's own work, noted on :attr:`Recorded.marks` so a benchmark can
    subtract the emulator's time from what a client measured (nothing else reads them)."""

    FIRST_BYTE = "first_byte"  # the answer's first body bytes or first audio frame handed over
    LAST_BYTE = "last_byte"  # an HTTP answer's last body bytes handed over
    AUDIO_IN = "audio_in"  # a live STT socket received its first audio
    PARTIAL = "partial"  # ... and sent its first interim transcript
    FLUSH_IN = "flush_in"  # a flush command arrived (Finalize, ForceEndpoint, Flush, flush: true)
    FINAL = "final"  # the final transcript answering that flush went out


@dataclass
class Recorded:
    """One request or WebSocket session the emulator served."""

    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    body: Any = None
    # WebSocket: every client message in order (bytes for audio, parsed JSON for text).
    messages: list[Any] = field(default_factory=list)
    opened_at: float = field(default_factory=time.perf_counter)
    closed_at: float | None = None  # when the client's connection went away
    # time.perf_counter() of each Moment, the first time it happened (see ``mark``).
    marks: dict[Moment, float] = field(default_factory=dict)

    def mark(self, moment: Moment) -> None:
        """Note that ``moment`` happened now, unless it already did."""
        self.marks.setdefault(moment, time.perf_counter())


@dataclass
class EmulatorState:
    """The traffic an emulator saw and the faults it still has to serve, in order."""

    api_key: str = "test-key"
    requests: list[Recorded] = field(default_factory=list)
    faults: deque[Fault] = field(default_factory=deque)
    # Seconds between streamed items, so tests can cancel mid-stream.
    stream_delay_s: float = 0.0
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def fail_next(self, *faults: Fault) -> None:
        """Answer the next ``len(faults)`` requests with these faults."""
        self.faults.extend(faults)

    def next_fault(self) -> Fault | None:
        """The fault to serve now, if any (consumed)."""
        return self.faults.popleft() if self.faults else None

    def record(self, recorded: Recorded) -> Recorded:
        """Keep ``recorded`` and return it (so a handler can add messages and closed_at)."""
        self.requests.append(recorded)
        return recorded

    def mark_closed(self, recorded: Recorded) -> None:
        """The client's connection of ``recorded`` went away now."""
        recorded.closed_at = time.perf_counter()
        self.closed.set()

    def last(self, path_part: str = "") -> Recorded:
        """The most recent request whose path contains ``path_part``."""
        for recorded in reversed(self.requests):
            if path_part in recorded.path:
                return recorded
        raise LookupError(f"no request to a path containing {path_part!r}")


def starlette_app(routes: Sequence[BaseRoute]) -> Starlette:
    """An ASGI app of ``routes``."""
    return Starlette(routes=list(routes))


@contextlib.asynccontextmanager
async def running(app: Starlette) -> AsyncIterator[str]:
    """Serve ``app`` on a free 127.0.0.1 port in this event loop; yields ``http://host:port``."""
    async with serving(app, free_port()) as url:
        yield url
