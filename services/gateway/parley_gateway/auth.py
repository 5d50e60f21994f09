"""Who is calling: the bearer token of a request or a WebSocket, checked once per call.

Every route except ``/health``, ``/metrics`` and the call page depends on ``CurrentUser``.
WebSockets may carry the token as ``?token=`` (browsers cannot set headers on them);
plain HTTP requests must use the ``Authorization`` header, so tokens stay out of access
logs and browser history.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, WebSocket
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from parley_common.contracts.ws import CLOSE_FORBIDDEN, CLOSE_UNAUTHENTICATED
from parley_common.errors import ForbiddenError, UnauthenticatedError
from parley_common.tokens import Principal, TokenVerifier

# Documents the scheme in OpenAPI; a missing header is Parley's own 401, not FastAPI's 403.
_bearer = HTTPBearer(auto_error=False, description="A JWT; `sub` is the user")


def verifier(conn: HTTPConnection) -> TokenVerifier:
    """The app's token verifier."""
    found: TokenVerifier = conn.app.state.token_verifier
    return found


async def current_user(
    conn: HTTPConnection,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller of an HTTP request (401 without a valid bearer token)."""
    token = credentials.credentials if credentials else None
    return verifier(conn).verify(token)


CurrentUser = Annotated[Principal, Depends(current_user)]


async def admin_user(principal: CurrentUser) -> Principal:
    """The caller, who must hold the admin scope (403 otherwise)."""
    if not principal.admin:
        raise ForbiddenError("this needs the admin scope", code="admin_required")
    return principal


AdminUser = Annotated[Principal, Depends(admin_user)]


def socket_user(websocket: WebSocket) -> Principal:
    """The caller of a WebSocket: ``?token=`` or an ``Authorization: Bearer`` header."""
    token = websocket.query_params.get("token")
    if not token:
        header = websocket.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        token = value.strip() if scheme.lower() == "bearer" else None
    return verifier(websocket).verify(token)


async def refuse_socket(websocket: WebSocket, exc: UnauthenticatedError | ForbiddenError) -> None:
    """Close an accepted WebSocket whose caller was refused, with the reason (4401/4403)."""
    code = CLOSE_UNAUTHENTICATED if isinstance(exc, UnauthenticatedError) else CLOSE_FORBIDDEN
    await websocket.close(code, exc.message)


def acting_user(principal: Principal, requested: str | None) -> str | None:
    """The user a request acts as: the token's ``sub``. A body naming another user is
    refused (403); without authentication the body's user is taken as it is."""
    if principal.user_id is None:
        return requested
    if requested is not None and requested != principal.user_id:
        if not principal.admin:
            raise ForbiddenError(
                "the request names another user than its token", code="user_mismatch"
            )
        return requested
    return principal.user_id
