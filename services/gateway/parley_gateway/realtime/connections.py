"""A client's WebSocket to a session: accepted with its caller checked, and held on this
gateway as the session's one connection."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import WebSocket

from parley_common.contracts.ws import (
    CLOSE_RATE_LIMITED,
    CLOSE_REPLACED,
    CLOSE_SESSION_NOT_FOUND,
)
from parley_common.errors import (
    ForbiddenError,
    NotFoundError,
    ParleyError,
    RateLimitedError,
    ServiceUnavailableError,
    UnauthenticatedError,
)
from parley_common.tokens import Principal
from parley_gateway.auth import refuse_socket, socket_user
from parley_gateway.realtime.claims import claimed
from parley_gateway.realtime.shared_positions import shared_positions
from parley_gateway.routes.deps import Gateway

# WebSocket close codes of RFC 6455: a request the server will not serve, a service that is
# down for now, an unexpected failure.
CLOSE_POLICY = 1008
CLOSE_TRY_AGAIN = 1013
CLOSE_INTERNAL = 1011
_MAX_REASON_BYTES = 123  # what a close frame can carry


def close_reason(text: str) -> str:
    """``text`` cut to fit in a close frame (whole characters)."""
    return text.encode()[:_MAX_REASON_BYTES].decode(errors="ignore")


def close_code_for(exc: ParleyError) -> int:
    """The WebSocket close code that tells a client why ``exc`` refused it."""
    if isinstance(exc, NotFoundError):
        return CLOSE_SESSION_NOT_FOUND
    if isinstance(exc, RateLimitedError):
        return CLOSE_RATE_LIMITED
    if isinstance(exc, ServiceUnavailableError):
        return CLOSE_TRY_AGAIN
    return CLOSE_INTERNAL if exc.code == "internal_error" else CLOSE_POLICY


async def close_for_error(websocket: WebSocket, exc: ParleyError) -> None:
    """Close an accepted WebSocket that ``exc`` refused, with its code and message."""
    await websocket.close(close_code_for(exc), close_reason(exc.message))


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


async def _replace(websocket: WebSocket) -> None:
    # Closed already (by the client, or by the other path that replaced it): nothing to do.
    with contextlib.suppress(RuntimeError):
        await websocket.close(CLOSE_REPLACED, "replaced by a newer connection")


@contextlib.asynccontextmanager
async def connected(gateway: Gateway, session_id: str, websocket: WebSocket) -> AsyncIterator[None]:
    """Hold ``session_id``'s connection on this gateway while inside (failover moves the
    workers of the sessions held here), closing an older connection of the same session,
    on this gateway process or on another (``claims``). The session's input-audio clock
    continues where its last connection on any process left it (``shared_positions``)."""
    shared = shared_positions(gateway.bus)
    elsewhere = await shared.load(session_id)
    if elsewhere > gateway.audio_positions.get(session_id):
        gateway.audio_positions.set(session_id, elsewhere)
    previous = gateway.connections.get(session_id)
    if previous is not None:
        await _replace(previous)
    gateway.connections[session_id] = websocket
    try:
        async with claimed(gateway.bus, session_id, lambda: _replace(websocket)):
            yield
    finally:
        if gateway.connections.get(session_id) is websocket:
            del gateway.connections[session_id]
        # The bridge has set where this connection left the clock.
        await shared.save(session_id, gateway.audio_positions.get(session_id))
