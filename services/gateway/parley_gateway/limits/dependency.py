"""The rate limits of routes: ``dependencies=[Depends(rate_limited("tts"))]``."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from starlette.requests import HTTPConnection

from parley_gateway.auth import CurrentUser
from parley_gateway.limits.rules import LimitKind
from parley_gateway.routes.deps import GatewayDep


def client_ip(conn: HTTPConnection) -> str | None:
    """The caller's address (a request or a WebSocket). Behind a reverse proxy it is the
    proxy's, unless uvicorn is told to trust its ``X-Forwarded-For``
    (``FORWARDED_ALLOW_IPS``; 127.0.0.1 is trusted by default)."""
    return conn.client.host if conn.client else None


def rate_limited(kind: LimitKind) -> Callable[..., Coroutine[Any, Any, None]]:
    """A route dependency counting each call as one ``kind`` request of its user and its IP;
    429 with ``Retry-After`` over either limit. It authenticates the caller itself (the
    route's own ``CurrentUser`` is the same, resolved once per request)."""

    async def _limit(conn: HTTPConnection, principal: CurrentUser, gateway: GatewayDep) -> None:
        await gateway.limiter.check(kind, user_id=principal.user_id, ip=client_ip(conn))

    return _limit
