"""WebSocket routes: ``/api/v1/sessions/{id}/ws`` and S1's ``/ws/voice/{id}``."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from parley_common.contracts.session import SessionStatus
from parley_common.contracts.ws import CLOSE_SESSION_ENDED, CLOSE_SESSION_NOT_FOUND
from parley_gateway.realtime.bridge import SessionBridge
from parley_gateway.realtime.connections import accept_caller, connected
from parley_gateway.routes.deps import get_gateway

router = APIRouter()


@router.websocket("/api/v1/sessions/{session_id}/ws")
@router.websocket("/ws/voice/{session_id}")
async def session_socket(websocket: WebSocket, session_id: str) -> None:
    """Bridge one client connection to its session. A missing or bad token (``?token=``),
    unknown, another user's or ended sessions are refused with an application close code
    and a reason the client can show."""
    gateway = get_gateway(websocket)
    principal = await accept_caller(websocket)
    if principal is None:
        return
    record = await gateway.store.get(session_id)
    if record is None or not principal.owns(record.user_id):
        await websocket.close(CLOSE_SESSION_NOT_FOUND, f"session {session_id} not found")
        return
    if record.status is SessionStatus.ENDED:
        await websocket.close(CLOSE_SESSION_ENDED, f"session {session_id} has ended")
        return
    async with connected(gateway, record.id, websocket):
        await SessionBridge(gateway, record, websocket).run()
