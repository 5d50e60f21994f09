"""What both providers' routes share: the calls' configuration and keys, the answer to a
voice webhook, and serving a call's media stream as a Parley session.

A call is one session of the telephony user (``PARLEY_TELEPHONY_USER``), with the options
the voice webhook's query string names (``?chatbot_id=…&voice=…``, checked when the
webhook is answered), audio out at 8 kHz. It starts when the stream's ``start`` presents
the token the webhook minted, and ends when the stream stops or closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import Request, Response, WebSocket
from pydantic import ValidationError
from starlette.requests import HTTPConnection

from parley_common.contracts.session import CreateSessionRequest
from parley_common.errors import (
    BadInputError,
    NotFoundError,
    ParleyError,
    ParleyTimeoutError,
    UnauthenticatedError,
)
from parley_common.tokens import Principal
from parley_gateway.auth import refuse_socket, verifier
from parley_gateway.limits.dependency import client_ip
from parley_gateway.realtime.bridge import SessionBridge
from parley_gateway.realtime.client import describe
from parley_gateway.realtime.connections import close_for_error, connected
from parley_gateway.routes.deps import Gateway, get_gateway
from parley_gateway.sessions.store import SessionRecord
from parley_gateway.telephony.connection import PhoneConnection, PhoneTransport
from parley_gateway.telephony.events import PHONE_RATE, Dialect, StreamStarted
from parley_gateway.telephony.markup import XML_MEDIA_TYPE, connect_stream
from parley_gateway.telephony.settings import TelephonySettings
from parley_gateway.telephony.signatures import telnyx_public_key
from parley_gateway.telephony.stream_tokens import StreamTokens, stream_key

log = logging.getLogger(__name__)

TOKEN_PARAMETER = "token"
# How long a stream may take from its opening to its ``start``.
START_TIMEOUT_S = 10.0
# Set by the gateway for every call, whatever the webhook's query says.
_FIXED = {"user_id", "output_sample_rate"}


@dataclass(frozen=True)
class Telephony:
    """The gateway's phone-call configuration and its stream-token keys."""

    settings: TelephonySettings
    tokens: StreamTokens
    telnyx_key: Ed25519PublicKey | None

    @property
    def principal(self) -> Principal:
        """Who the calls' sessions belong to."""
        return Principal(user_id=self.settings.user)


def telephony(conn: HTTPConnection) -> Telephony:
    """The app's ``Telephony``, made on first use from the gateway's settings."""
    found: Telephony | None = getattr(conn.app.state, "telephony", None)
    if found is None:
        settings = get_gateway(conn).settings.telephony
        secret = settings.secret.get_secret_value() if settings.secret else None
        jwt_secret = verifier(conn).settings.secret
        key = stream_key(secret, jwt_secret.get_secret_value() if jwt_secret else None)
        telnyx_key = (
            telnyx_public_key(settings.telnyx_public_key) if settings.telnyx_public_key else None
        )
        found = Telephony(settings, StreamTokens(key, settings.stream_token_ttl_s), telnyx_key)
        conn.app.state.telephony = found
    return found


def not_configured(variable: str) -> NotFoundError:
    """The error of a provider's route while its key is unset."""
    # Off is not an outage: as if the route did not exist (nothing is revealed either).
    return NotFoundError(
        f"phone calls of this provider are off: set {variable}", code="telephony_not_configured"
    )


def called_url(request: Request, settings: TelephonySettings) -> str:
    """The URL the provider requested, as it signed it: on ``PARLEY_PUBLIC_URL`` when set
    (a proxy in front of the gateway changes the host and scheme), else as received."""
    if settings.public_url is None:
        return str(request.url)
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{settings.public_url}{request.url.path}{query}"


def stream_url(request: Request, settings: TelephonySettings, path: str) -> str:
    """The ``wss://`` URL of a stream route, on the public base URL."""
    base = settings.public_url or str(request.base_url).rstrip("/")
    return "ws" + base.removeprefix("http") + path


def call_request(options: Mapping[str, str], user: str) -> CreateSessionRequest:
    """The session a call starts: ``options`` (session options, as text) for ``user``, audio
    out at the phone's rate. BadInputError names what is wrong with them."""
    fields: dict[str, Any] = {k: v for k, v in options.items() if k not in _FIXED}
    fields |= {"user_id": user, "output_sample_rate": PHONE_RATE}
    try:
        return CreateSessionRequest.model_validate(fields)
    except ValidationError as exc:
        raise BadInputError(f"the call's session options are not valid: {describe(exc)}") from exc


async def answer_call(
    request: Request,
    gateway: Gateway,
    phone: Telephony,
    provider: str,
    call_id: str,
    stream_path: str,
    attributes: Mapping[str, str] | None = None,
) -> Response:
    """The markup that connects a call (its webhook's signature checked) to its stream, the
    query string's options and a fresh stream token as the stream's parameters."""
    options = dict(request.query_params)
    if TOKEN_PARAMETER in options:
        raise BadInputError(f"{TOKEN_PARAMETER!r} is not a session option")
    call_request(options, phone.settings.user)
    await gateway.limiter.check("session_start", user_id=phone.settings.user, ip=client_ip(request))
    token = phone.tokens.mint(provider, call_id, options)
    url = stream_url(request, phone.settings, stream_path)
    markup = connect_stream(url, {**options, TOKEN_PARAMETER: token}, attributes)
    log.info("call answered", extra={"provider": provider})
    return Response(markup, media_type=XML_MEDIA_TYPE)


async def serve_stream(websocket: WebSocket, dialect: Dialect, *, same_call: bool) -> None:
    """A call's media stream: its ``start`` must carry a valid token (``same_call``: minted
    for the call the stream names), then it is a session until it stops or closes."""
    gateway = get_gateway(websocket)
    phone = telephony(websocket)
    await websocket.accept()
    try:
        started = await _started(websocket, dialect)
        if started is None:
            return
        parameters = dict(started.parameters)
        token = parameters.pop(TOKEN_PARAMETER, None)
        call_id = started.call_id if same_call else None
        phone.tokens.redeem(token, dialect.provider, parameters, call_id)
        request = call_request(parameters, phone.settings.user)
        record = await gateway.lifecycle.start(request, phone.principal)
    except UnauthenticatedError as exc:
        log.info("phone stream refused", extra={"provider": dialect.provider, "code": exc.code})
        await refuse_socket(websocket, exc)
        return
    except ParleyError as exc:
        log.warning(
            "phone call not started", extra={"provider": dialect.provider, "code": exc.code}
        )
        await close_for_error(websocket, exc)
        return
    try:
        await _hold(gateway, record, websocket, dialect, started, phone.settings)
    finally:
        await _hang_up(gateway, record, websocket)


async def _started(websocket: WebSocket, dialect: Dialect) -> StreamStarted | None:
    """The stream's ``start`` (the frames before it, ``connected``, say nothing); None when
    the provider left first."""
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return None
                text = message.get("text")
                event = dialect.parse(text) if text is not None else None
                if isinstance(event, StreamStarted):
                    return event
    except TimeoutError as exc:
        raise ParleyTimeoutError(f"the stream sent no start within {START_TIMEOUT_S:g} s") from exc
    except ValueError as exc:
        raise BadInputError(f"the stream's start is not usable: {exc}") from exc


async def _hold(
    gateway: Gateway,
    record: SessionRecord,
    websocket: WebSocket,
    dialect: Dialect,
    started: StreamStarted,
    settings: TelephonySettings,
) -> None:
    connection = PhoneConnection(
        websocket, gateway.activity.noter(record.id), dialect, started, settings
    )
    transport = PhoneTransport(connection, gateway.settings.max_ws_message_bytes)
    log.info("call connected", extra={"provider": dialect.provider, "session_id": record.id})
    async with connected(gateway, record.id, websocket):
        await SessionBridge(gateway, record, websocket, transport=transport).run()
    if connection.echo is not None and connection.echo.suppressed:
        log.info("echo suppressed", extra={"frames": connection.echo.suppressed})


async def _hang_up(gateway: Gateway, record: SessionRecord, websocket: WebSocket) -> None:
    """The call is over: so is its session."""
    try:
        await gateway.lifecycle.end(record.id)
    except ParleyError as exc:
        log.warning("phone session not ended", extra={"code": exc.code})
    gateway.audio_positions.forget(record.id)
    with contextlib.suppress(RuntimeError):
        await websocket.close()
