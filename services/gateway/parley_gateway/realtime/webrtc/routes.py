"""WebRTC signalling routes: ``GET /api/v1/webrtc`` and ``POST /api/v1/sessions/{id}/webrtc``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request

from parley_common.contracts.session import SessionStatus
from parley_common.contracts.webrtc import SdpAnswer, SdpOffer, WebRtcConfigView
from parley_common.errors import ConflictError
from parley_gateway.auth import CurrentUser
from parley_gateway.realtime.webrtc.calls import WebRtcCalls
from parley_gateway.realtime.webrtc.settings import WebRtcSettings
from parley_gateway.routes.deps import GatewayDep
from parley_gateway.routes.sessions_v1 import load_session

ANONYMOUS = "anonymous"


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Nested in the application's lifespan (FastAPI merges a router's): the gateway is open
    # first, and every call is closed before it closes.
    async with WebRtcCalls(WebRtcSettings()) as calls:
        app.state.webrtc_calls = calls
        yield


router = APIRouter(tags=["webrtc"], lifespan=_lifespan)


def _calls(request: Request) -> WebRtcCalls:
    calls: WebRtcCalls = request.app.state.webrtc_calls
    return calls


@router.get("/api/v1/webrtc", response_model=WebRtcConfigView)
async def webrtc_config(request: Request, principal: CurrentUser) -> WebRtcConfigView:
    """What a browser needs before its offer: the STUN/TURN servers (TURN credentials minted
    for the caller when ``WEBRTC_TURN_SECRET`` is set) and the data channel's parameters.
    404 ``webrtc_disabled`` when WebRTC is off: use the session's WebSocket."""
    calls = _calls(request)
    calls.require_enabled()
    servers = calls.settings.ice_servers_for(principal.user_id or ANONYMOUS, time.time())
    return WebRtcConfigView(ice_servers=servers)


@router.post("/api/v1/sessions/{session_id}/webrtc", response_model=SdpAnswer)
async def webrtc_offer(
    request: Request,
    gateway: GatewayDep,
    principal: CurrentUser,
    session_id: str,
    offer: SdpOffer,
) -> SdpAnswer:
    """Connect the caller's session over WebRTC: the browser's SDP offer (every ICE candidate
    gathered: no trickle) in, the gateway's answer out. Opus audio both ways, the WebSocket's
    JSON messages on the data channel. 404 for another user's session, 409 for an ended one,
    422 ``webrtc_offer_invalid`` for an offer without audio or data channel, 503 at capacity.
    A newer connection of the session (WebRTC or WebSocket) replaces this one."""
    calls = _calls(request)
    calls.require_enabled()
    record = await load_session(gateway, session_id, principal)
    if record.status is SessionStatus.ENDED:
        raise ConflictError(f"session {session_id} has ended", code="session_ended")
    return await calls.open(gateway, record, offer)
