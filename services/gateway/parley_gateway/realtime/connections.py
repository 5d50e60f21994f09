"""Which session's WebSocket this gateway holds: one connection per session at a time."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import WebSocket

from parley_common.contracts.ws import CLOSE_REPLACED
from parley_gateway.routes.deps import Gateway


@contextlib.asynccontextmanager
async def connected(gateway: Gateway, session_id: str, websocket: WebSocket) -> AsyncIterator[None]:
    """Hold ``session_id``'s connection on this gateway while inside (failover moves the
    workers of the sessions held here), closing an older connection of the same session."""
    previous = gateway.connections.get(session_id)
    if previous is not None:
        with contextlib.suppress(RuntimeError):
            await previous.close(CLOSE_REPLACED, "replaced by a newer connection")
    gateway.connections[session_id] = websocket
    try:
        yield
    finally:
        if gateway.connections.get(session_id) is websocket:
            del gateway.connections[session_id]
