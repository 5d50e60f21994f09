"""The voice webhooks on a real gateway (authentication on, yet no bearer token needed):
signed on PARLEY_PUBLIC_URL they answer markup connecting the call to a ``wss://`` stream on
that URL with the call's options and a token; unsigned, mis-signed or stale they are a 403;
bad options a 422; a provider without its key a 404. A stream from such an answer is a
session of the telephony user that survives a malformed frame and ends on ``stop``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlencode
from xml.etree import ElementTree

import asyncpg
import httpx
import pytest
import websockets
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import SecretStr

from parley_common.testing import eventually, serving
from parley_common.tokens import AuthSettings, new_secret
from parley_common.workers import SessionWorker
from parley_gateway.app import create_app
from parley_gateway.settings import GatewaySettings
from parley_gateway.telephony.settings import TelephonySettings
from parley_launcher.embedded.process import free_port

PUBLIC = "https://voice.example.com"
AUTH_TOKEN = "twilio-auth-token-for-these-tests"
TELNYX_KEY = Ed25519PrivateKey.generate()
OPTIONS = {"voice": "joe", "interrupt_sensitivity": "high"}


def _telnyx_public() -> str:
    raw = TELNYX_KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


async def _gateway(
    nats_url: str, database_url: str, telephony: TelephonySettings
) -> AsyncIterator[str]:
    port = free_port()
    settings = GatewaySettings(
        nats_url=nats_url,
        database_url=SecretStr(database_url),
        http_port=port,
        telephony=telephony,
    )
    async with serving(
        create_app(settings, AuthSettings(secret=SecretStr(new_secret()))), port
    ) as url:
        yield url


@pytest.fixture(scope="module")
async def phone_url(
    nats_url: str, database_url: str, workers: dict[str, SessionWorker]
) -> AsyncIterator[str]:
    """A gateway reached at PUBLIC by the providers (through a proxy, say)."""
    telephony = TelephonySettings(
        public_url=PUBLIC,
        twilio_auth_token=SecretStr(AUTH_TOKEN),
        telnyx_public_key=_telnyx_public(),
        telnyx_codec="PCMA",
    )
    async for url in _gateway(nats_url, database_url, telephony):
        yield url


def _form(call_sid: str = "CA0123456789abcdef") -> dict[str, str]:
    return {"CallSid": call_sid, "From": "+15005550006", "To": "+15005550001"}


def _twilio_signature(url: str, form: dict[str, str], token: str = AUTH_TOKEN) -> str:
    data = url + "".join(k + v for k, v in sorted(form.items()))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


async def _post(base: str, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    content = {"Content-Type": "application/x-www-form-urlencoded", **headers}
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        return await client.post(path, content=body, headers=content)


async def twilio_call(
    base: str,
    query: dict[str, str],
    form: dict[str, str] | None = None,
    *,
    signed_url: str | None = None,
    signature: str | None = None,
) -> httpx.Response:
    form = form or _form()
    path = "/telephony/twilio/voice" + (f"?{urlencode(query)}" if query else "")
    if signature is None:
        signature = _twilio_signature(signed_url or PUBLIC + path, form)
    headers = {"X-Twilio-Signature": signature} if signature else {}
    return await _post(base, path, urlencode(form).encode(), headers)


async def telnyx_call(
    base: str,
    query: dict[str, str],
    *,
    at: float | None = None,
    key: Ed25519PrivateKey = TELNYX_KEY,
    signed: bool = True,
) -> httpx.Response:
    body = urlencode(_form("v3:abc")).encode()
    stamp = str(int(time.time() if at is None else at))
    signature = base64.b64encode(key.sign(stamp.encode() + b"|" + body)).decode()
    headers = {"telnyx-signature-ed25519": signature, "telnyx-timestamp": stamp} if signed else {}
    path = "/telephony/telnyx/voice" + (f"?{urlencode(query)}" if query else "")
    return await _post(base, path, body, headers)


def _stream(markup: str) -> ElementTree.Element:
    root = ElementTree.fromstring(markup)
    stream = root.find("./Connect/Stream")
    assert stream is not None, markup
    return stream


def _parameters(stream: ElementTree.Element) -> dict[str, str]:
    return {p.attrib["name"]: p.attrib["value"] for p in stream.findall("Parameter")}


async def test_twilio_answers_a_signed_call_with_a_stream_on_the_public_url(phone_url: str) -> None:
    response = await twilio_call(phone_url, OPTIONS)  # no bearer token: Twilio has none
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    stream = _stream(response.text)
    assert stream.attrib == {"url": "wss://voice.example.com/telephony/twilio/stream"}
    parameters = _parameters(stream)
    assert parameters.pop("token").count(".") == 2  # a JWT
    assert parameters == OPTIONS


@pytest.mark.parametrize("case", ["missing", "wrong-token", "gateway-url", "other-query"])
async def test_twilio_refuses_what_it_did_not_sign(phone_url: str, case: str) -> None:
    path = "/telephony/twilio/voice?" + urlencode(OPTIONS)
    form = _form()
    signature = {
        "missing": "",
        "wrong-token": _twilio_signature(PUBLIC + path, form, token="another-token"),
        # Signed for the URL the gateway saw, not the one Twilio called.
        "gateway-url": _twilio_signature(phone_url + path, form),
        "other-query": _twilio_signature(PUBLIC + "/telephony/twilio/voice?voice=amy", form),
    }[case]
    response = await twilio_call(phone_url, OPTIONS, form, signature=signature)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "webhook_signature"


@pytest.mark.parametrize(
    ("query", "form", "fragment"),
    [
        ({"interrupt_sensitivity": "extreme"}, None, "session options"),
        ({"no_such_option": "1"}, None, "session options"),
        ({"token": "mine"}, None, "not a session option"),
        ({}, {"From": "+15005550006"}, "CallSid"),
    ],
)
async def test_twilio_refuses_bad_options(
    phone_url: str, query: dict[str, str], form: dict[str, str] | None, fragment: str
) -> None:
    response = await twilio_call(phone_url, query, form)
    assert response.status_code == 422  # Parley's status for bad input
    assert fragment in response.json()["error"]["message"]


async def test_telnyx_answers_a_signed_call_with_a_bidirectional_stream(phone_url: str) -> None:
    response = await telnyx_call(phone_url, OPTIONS)
    assert response.status_code == 200, response.text
    stream = _stream(response.text)
    assert stream.attrib == {
        "url": "wss://voice.example.com/telephony/telnyx/stream",
        "bidirectionalMode": "rtp",
        "bidirectionalCodec": "PCMA",
        "codec": "PCMA",
    }
    assert set(_parameters(stream)) == {*OPTIONS, "token"}


@pytest.mark.parametrize("case", ["missing", "stale", "other-key"])
async def test_telnyx_refuses_what_it_did_not_sign_lately(phone_url: str, case: str) -> None:
    if case == "missing":
        response = await telnyx_call(phone_url, OPTIONS, signed=False)
    elif case == "stale":
        response = await telnyx_call(phone_url, OPTIONS, at=time.time() - 600)
    else:
        response = await telnyx_call(phone_url, OPTIONS, key=Ed25519PrivateKey.generate())
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "webhook_signature"


async def test_a_provider_without_its_key_is_off(nats_url: str, database_url: str) -> None:
    async for url in _gateway(nats_url, database_url, TelephonySettings.model_construct()):
        for response in (await twilio_call(url, {}), await telnyx_call(url, {})):
            assert response.status_code == 404
            assert response.json()["error"]["code"] == "telephony_not_configured"


async def test_a_stream_is_a_session_of_the_telephony_user_until_stop(
    phone_url: str, pool: asyncpg.Pool
) -> None:
    chatbot = f"webhook-{uuid.uuid4().hex[:10]}"
    call_sid = "CA" + uuid.uuid4().hex
    response = await twilio_call(phone_url, {"chatbot_id": chatbot}, _form(call_sid))
    stream = _stream(response.text)
    url = stream.attrib["url"].replace("wss://voice.example.com", phone_url.replace("http", "ws"))
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        start = {
            "streamSid": "MZ1",
            "callSid": call_sid,
            "customParameters": _parameters(stream),
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        }
        await ws.send(json.dumps({"event": "start", "streamSid": "MZ1", "start": start}))

        async def started() -> bool:
            count = await pool.fetchval(
                "SELECT count(*) FROM voice_sessions WHERE chatbot_id=$1 AND user_id='telephony'"
                " AND status='active'",
                chatbot,
            )
            return bool(count)

        await eventually(started)
        await ws.send("{not json")  # dropped; the call goes on
        media = {"track": "inbound", "payload": base64.b64encode(bytes(160)).decode()}
        await ws.send(json.dumps({"event": "media", "streamSid": "MZ1", "media": media}))
        await ws.send(json.dumps({"event": "stop", "streamSid": "MZ1", "stop": {}}))
        await ws.wait_closed()
        assert ws.close_code == 1000

    async def ended() -> bool:
        status = await pool.fetchval(
            "SELECT status FROM voice_sessions WHERE chatbot_id=$1", chatbot
        )
        return bool(status == "ended")

    await eventually(ended)
