"""Telnyx: ``POST /telephony/telnyx/voice`` (a TeXML application's voice URL) and
``WS /telephony/telnyx/stream`` (the bidirectional media stream it connects the call to).

The webhook is authenticated by its Ed25519 signature (``telnyx-signature-ed25519`` over
``{telnyx-timestamp}|{body}``, checked with ``TELNYX_PUBLIC_KEY``; a bad, missing or stale
one is a 403), the stream by the one-call token the webhook's answer gave it.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response, WebSocket

from parley_common.errors import BadInputError, ForbiddenError
from parley_gateway.routes.deps import GatewayDep
from parley_gateway.telephony.calls import answer_call, not_configured, serve_stream, telephony
from parley_gateway.telephony.markup import markup_responses
from parley_gateway.telephony.signatures import (
    TELNYX_SIGNATURE,
    TELNYX_TIMESTAMP,
    telnyx_signature_valid,
)
from parley_gateway.telephony.telnyx_wire import PROVIDER, TelnyxDialect

router = APIRouter(prefix="/telephony/telnyx", tags=["telephony"])

STREAM_PATH = "/telephony/telnyx/stream"


@router.post(
    "/voice",
    response_class=Response,
    responses=markup_responses("TeXML"),
)
async def telnyx_voice(request: Request, gateway: GatewayDep) -> Response:
    """Answer a call with TeXML connecting it to a bidirectional media stream in
    ``PARLEY_TELEPHONY_TELNYX_CODEC``. The query string holds the call's session options.
    403 unless Telnyx signed it within the last five minutes."""
    phone = telephony(request)
    if phone.telnyx_key is None:
        raise not_configured("TELNYX_PUBLIC_KEY")
    body = await request.body()
    signed = telnyx_signature_valid(
        phone.telnyx_key,
        body,
        request.headers.get(TELNYX_SIGNATURE),
        request.headers.get(TELNYX_TIMESTAMP),
    )
    if not signed:
        raise ForbiddenError("the request is not signed by Telnyx", code="webhook_signature")
    call_sid = dict(parse_qsl(body.decode("utf-8", "replace"))).get("CallSid")
    if not call_sid:
        raise BadInputError("the webhook names no CallSid")
    codec = phone.settings.telnyx_codec
    attributes = {"bidirectionalMode": "rtp", "bidirectionalCodec": codec, "codec": codec}
    return await answer_call(request, gateway, phone, PROVIDER, call_sid, STREAM_PATH, attributes)


@router.websocket("/stream")
async def telnyx_stream(websocket: WebSocket) -> None:
    """A call's media stream; its ``start`` must carry the token the webhook minted (else
    the socket closes with 4401). Telnyx names the call by its call control id there, not
    the webhook's CallSid, so the token binds the stream's parameters and is used once."""
    await serve_stream(websocket, TelnyxDialect(), same_call=False)
