"""Twilio: ``POST /telephony/twilio/voice`` (the number's voice webhook) and
``WS /telephony/twilio/stream`` (the Media Stream it connects the call to).

Neither route takes a Parley token: Twilio cannot send one. The webhook is authenticated by
its ``X-Twilio-Signature`` (checked with ``TWILIO_AUTH_TOKEN``; anything else is a 403), the
stream by the one-call token the webhook's answer gave it.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, WebSocket

from parley_common.errors import BadInputError, ForbiddenError
from parley_gateway.routes.deps import GatewayDep
from parley_gateway.telephony.calls import (
    answer_call,
    called_url,
    not_configured,
    serve_stream,
    telephony,
)
from parley_gateway.telephony.markup import markup_responses
from parley_gateway.telephony.signatures import (
    TWILIO_SIGNATURE,
    TWILIO_SIGNATURE_SETTINGS,
    form_items,
    twilio_signature_valid,
)
from parley_gateway.telephony.twilio_wire import PROVIDER, TwilioDialect

router = APIRouter(prefix="/telephony/twilio", tags=["telephony"])

STREAM_PATH = "/telephony/twilio/stream"


@router.post(
    "/voice",
    response_class=Response,
    responses=markup_responses("TwiML"),
)
async def twilio_voice(request: Request, gateway: GatewayDep) -> Response:
    """Answer a call with TwiML connecting it to a Media Stream. The query string holds the
    call's session options (``?chatbot_id=…&voice=…``). 403 unless Twilio signed it."""
    phone = telephony(request)
    auth_token = phone.settings.twilio_auth_token
    if auth_token is None or not auth_token.get_secret_value():
        raise not_configured("TWILIO_AUTH_TOKEN")
    form = form_items((await request.form()).multi_items())
    signed = twilio_signature_valid(
        auth_token.get_secret_value(),
        called_url(request, phone.settings),
        form,
        request.headers.get(TWILIO_SIGNATURE),
        request.headers.get(TWILIO_SIGNATURE_SETTINGS),
    )
    if not signed:
        raise ForbiddenError("the request is not signed by Twilio", code="webhook_signature")
    call_sid = dict(form).get("CallSid")
    if not call_sid:
        raise BadInputError("the webhook names no CallSid")
    return await answer_call(request, gateway, phone, PROVIDER, call_sid, STREAM_PATH)


@router.websocket("/stream")
async def twilio_stream(websocket: WebSocket) -> None:
    """A call's Media Stream; its ``start`` must carry the token the webhook minted for that
    call (else the socket closes with 4401)."""
    await serve_stream(websocket, TwilioDialect(), same_call=True)
