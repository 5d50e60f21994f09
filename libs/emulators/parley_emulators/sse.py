"""Server-Sent Events as a provider streams them: frames spaced by ``state.stream_delay_s``,
the client's disconnect recorded the moment it happens, and a connection cut mid-stream.

Shared by the emulators whose providers answer with ``text/event-stream`` (chat completions,
Anthropic messages, streamed transcription).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from parley_emulators.base import EmulatorState, Moment, Recorded

__all__ = ["CUT", "Frame", "SseResponse", "event_frame"]


class _Cut:
    """Where it appears among the frames, the server closes the TCP connection without
    ending the chunked body: what a client sees when a provider's connection drops."""

    def __repr__(self) -> str:
        return "CUT"


CUT = _Cut()
Frame = bytes | _Cut


def event_frame(data: Any, event: str | None = None) -> bytes:
    """One SSE event: an ``event:`` line when named, then ``data:`` (JSON unless ``data`` is
    already text), then the blank line that ends it."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n".encode()


class SseResponse(Response):
    """A 200 ``text/event-stream`` answer of ``frames``, recorded on ``recorded``: the first
    frame goes at once, each next one ``state.stream_delay_s`` later; if the client goes away,
    ``state.mark_closed(recorded)`` runs then and nothing more is sent."""

    def __init__(
        self,
        state: EmulatorState,
        recorded: Recorded,
        frames: Sequence[Frame],
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            status_code=200,
            headers={"cache-control": "no-cache", **(headers or {})},
            media_type="text/event-stream",
        )
        # Streamed in chunks: no length, so a cut leaves the client an incomplete body.
        del self.headers["content-length"]
        self._state = state
        self._recorded = recorded
        self._frames = frames

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        gone = asyncio.create_task(self._disconnect(receive))
        try:
            for index, frame in enumerate(self._frames):
                if index and self._state.stream_delay_s > 0:
                    await asyncio.wait({gone}, timeout=self._state.stream_delay_s)
                if gone.done() or isinstance(frame, _Cut):
                    # Returning before the body is complete makes the server drop the line.
                    return
                await send({"type": "http.response.body", "body": frame, "more_body": True})
                self._recorded.mark(Moment.FIRST_BYTE)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            self._recorded.mark(Moment.LAST_BYTE)
        finally:
            gone.cancel()

    async def _disconnect(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self._state.mark_closed(self._recorded)
