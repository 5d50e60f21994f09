"""A client's WebSocket to a session: accepted with its caller checked, and held on this
gateway as the session's one connection."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import WebSocket

from parley_common.contracts.ws import CLOSE_REPLACED
from parley_common.errors import ForbiddenError, UnauthenticatedError
from parley_common.tokens import Principal
from parley_gateway.auth import refuse_socket, socket_user
from parley_gateway.routes.deps import Gateway


async def accept_caller(websocket: WebSocket) -> Principal | None:
    """Accept the WebSocket and authenticate its caller (``?token=``); a caller refused is
    told why as the socket closes (4401/4403), and None returned."""
    # Accept before closing: a close before the handshake is an HTTP 403 without a reason.
    await websocket.accept()
    try:
        return socket_user(websocket)
    except (UnauthenticatedError, ForbiddenError) as exc:
        await refuse_socket(websocket, exc)
        return None


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
