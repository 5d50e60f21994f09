"""What route handlers get from the application: opened once in the lifespan."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import asyncpg
from fastapi import Depends, Request, WebSocket
from starlette.requests import HTTPConnection

from parley_common.bus import Bus
from parley_common.runtime import Runtime
from parley_gateway.limits.limiter import RateLimiter
from parley_gateway.realtime.audio_clock import SessionPositions
from parley_gateway.sessions.activity import SessionActivity
from parley_gateway.sessions.lifecycle import SessionLifecycle
from parley_gateway.sessions.store import SessionRecord, SessionStore
from parley_gateway.settings import GatewaySettings


@dataclass(frozen=True)
class Gateway:
    """The gateway's open resources."""

    settings: GatewaySettings
    runtime: Runtime
    store: SessionStore
    lifecycle: SessionLifecycle
    # The open WebSocket of each session on this gateway (a reconnect replaces it).
    connections: dict[str, WebSocket] = field(default_factory=dict)
    # Each session's input-audio clock, continued across reconnects.
    audio_positions: SessionPositions = field(default_factory=SessionPositions)
    # Sessions whose client sent audio or a message lately (what idle-ending reads).
    activity: SessionActivity = field(default_factory=SessionActivity)
    # Rate limits shared with every replica (parley_gateway.limits); none unless given.
    limiter: RateLimiter = field(default_factory=RateLimiter.unlimited)

    @property
    def bus(self) -> Bus:
        """The gateway's bus connection."""
        return self.runtime.bus

    @property
    def pool(self) -> asyncpg.Pool:
        """The gateway's database pool (the gateway always has one)."""
        assert self.runtime.pool is not None
        return self.runtime.pool


def get_gateway(conn: HTTPConnection) -> Gateway:
    """The ``Gateway`` stored on the app by the lifespan."""
    gateway: Gateway = conn.app.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]


def ws_url(request: Request, path: str) -> str:
    """Absolute WebSocket URL of ``path`` on the host the client used."""
    scheme = "wss" if request.url.scheme == "https" else "ws"
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"{scheme}://{host}{path}"


def v1_ws_path(record: SessionRecord) -> str:
    """The ``/api/v1`` WebSocket path of a session."""
    return f"/api/v1/sessions/{record.id}/ws"
