"""``WS /v1/realtime?model=…``: OpenAI's Realtime API (GA protocol) in front of Parley.

The caller's Parley token is the API key (``Authorization: Bearer``, or ``?token=``). The
``model`` picks the session's profile: an OpenAI model name (``gpt-…``) means Parley's
defaults; any other name is a chatbot, whose stored voice configuration gives the defaults
(as for S2's socket). The Parley session starts with the first audio or item and ends when
the socket closes: an OpenAI Realtime session cannot be resumed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from parley_common.contracts import subjects
from parley_common.contracts.session import CreateSessionRequest, SessionConfig
from parley_common.contracts.ws import CLOSE_SESSION_ENDED, CLOSE_SESSION_NOT_FOUND
from parley_common.errors import (
    BadInputError,
    ForbiddenError,
    NotFoundError,
    ParleyError,
    UnauthenticatedError,
)
from parley_common.tokens import Principal
from parley_gateway.auth import refuse_socket, socket_user
from parley_gateway.limits.dependency import client_ip
from parley_gateway.realtime.bridge import SessionBridge
from parley_gateway.realtime.connections import CLOSE_POLICY, connected
from parley_gateway.realtime.openai import wire
from parley_gateway.realtime.openai.connection import RealtimeClient
from parley_gateway.realtime.openai.options import RealtimeOptions
from parley_gateway.realtime.openai.refusals import error_event
from parley_gateway.routes.deps import Gateway, get_gateway
from parley_gateway.routes.sessions_v1 import as_caller
from parley_gateway.sessions.store import SessionRecord

log = logging.getLogger(__name__)

router = APIRouter()

DEFAULT_MODEL = "gpt-realtime"
MAX_MODEL_CHARS = 200  # a chatbot id's limit
_OPENAI_MODEL_PREFIX = "gpt-"


def profile_of(model: str) -> str | None:
    """The chatbot whose configuration a ``model`` names (None: Parley's defaults)."""
    return None if model.startswith(_OPENAI_MODEL_PREFIX) else model


async def profile_config(gateway: Gateway, principal: Principal, model: str) -> SessionConfig:
    """The session defaults of ``model``'s profile (NotFoundError: another user's chatbot;
    BadInputError: not a name a chatbot can have)."""
    if len(model) > MAX_MODEL_CHARS or "\x00" in model:
        raise BadInputError(f"model names are at most {MAX_MODEL_CHARS} characters")
    chatbot = profile_of(model)
    stored = await gateway.lifecycle.voice_configs.get(chatbot, principal) if chatbot else None
    defaults = stored.session_defaults() if stored else {}
    return SessionConfig.model_validate({**SessionConfig().model_dump(), **defaults})


@router.websocket("/v1/realtime")
async def openai_realtime(websocket: WebSocket) -> None:
    """An OpenAI Realtime conversation. A refused token gets OpenAI's ``error`` event, then
    the close (4401/4403); another user's chatbot as the model closes with 4404."""
    gateway = get_gateway(websocket)
    await websocket.accept()
    try:
        principal = socket_user(websocket)
    except (UnauthenticatedError, ForbiddenError) as exc:
        await websocket.send_text(error_event(exc))
        await refuse_socket(websocket, exc)
        return
    model = websocket.query_params.get("model") or DEFAULT_MODEL
    try:
        base = await profile_config(gateway, principal, model)
    except (BadInputError, NotFoundError) as exc:
        await websocket.send_text(error_event(exc))
        code = CLOSE_SESSION_NOT_FOUND if isinstance(exc, NotFoundError) else CLOSE_POLICY
        await websocket.close(code, exc.message)
        return
    options = RealtimeOptions.create(model, base)
    client = RealtimeClient(websocket, gateway, principal, options)
    await client.send_event(wire.SessionCreated(session=options.view()))
    with contextlib.suppress(WebSocketDisconnect):
        record = await _when_needed(gateway, principal, client, websocket)
        if record is not None:
            await _converse(gateway, client, record, websocket)


async def _when_needed(
    gateway: Gateway, principal: Principal, client: RealtimeClient, websocket: WebSocket
) -> SessionRecord | None:
    """Serve the client until an event needs the pipeline, then start the session; a start
    refused is told and the client may try again. None when the client stays idle."""
    idle_s = gateway.settings.idle_timeout_s or None
    while True:
        try:
            async with asyncio.timeout(idle_s):
                await client.until_session_needed()
        except TimeoutError:
            await websocket.close(CLOSE_SESSION_ENDED, f"no audio or event for {idle_s:g} s")
            return None
        try:
            return await _start(gateway, principal, client, websocket)
        except ParleyError as exc:
            log.info("realtime session not started", extra={"code": exc.code})
            client.start_refused(exc)
            await client.refuse(exc)


async def _start(
    gateway: Gateway, principal: Principal, client: RealtimeClient, websocket: WebSocket
) -> SessionRecord:
    await gateway.limiter.check("session_start", user_id=principal.user_id, ip=client_ip(websocket))
    options = client.options
    fields = {**options.config.model_dump(), "chatbot_id": profile_of(options.model)}
    request = as_caller(principal, CreateSessionRequest.model_validate(fields))
    return await gateway.lifecycle.start(request, principal)


async def _converse(
    gateway: Gateway, client: RealtimeClient, record: SessionRecord, websocket: WebSocket
) -> None:
    # Usage events are durable facts on one subject for every session; the client keeps
    # its own session's token counts for response.done.
    usage = await gateway.bus.subscribe(subjects.event("usage.recorded"), client.on_usage)
    try:
        await client.started(record)
        async with connected(gateway, record.id, websocket):
            await SessionBridge(gateway, record, websocket, transport=client).run()
    finally:
        with contextlib.suppress(Exception):
            await usage.unsubscribe()
        await gateway.lifecycle.end(record.id)
