"""WebRTC signalling refusals and configuration: tokens, another user's or an ended session,
offers that cannot be answered, WebRTC switched off, the ICE servers (with TURN
credentials minted from a shared secret) and the outgoing track's pacing."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamError
from pydantic import SecretStr

from conftest import SecuredPlatform
from parley_common.testing import serving
from parley_common.tokens import AuthSettings
from parley_gateway.app import create_app
from parley_gateway.realtime.webrtc.settings import IceServer, WebRtcSettings
from parley_gateway.realtime.webrtc.tracks import PacedPcmTrack
from parley_gateway.settings import GatewaySettings
from parley_launcher.embedded.process import free_port

SCRIPTED = {"stt_provider": "scripted", "llm_provider": "scripted", "tts_provider": "scripted"}


async def _offer(*, audio: bool = True, data: bool = True) -> str:
    pc = RTCPeerConnection()
    try:
        if audio:
            pc.addTransceiver("audio", direction="sendrecv")
        if data:
            pc.createDataChannel("parley", negotiated=True, id=0)
        await pc.setLocalDescription(await pc.createOffer())
        return str(pc.localDescription.sdp)
    finally:
        await pc.close()


@pytest.fixture
async def secured(secured_platform: SecuredPlatform) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the secured gateway signed in as ``alice``."""
    headers = secured_platform.headers("alice")
    async with httpx.AsyncClient(base_url=secured_platform.url, headers=headers) as client:
        yield client


async def _session(client: httpx.AsyncClient) -> str:
    created = await client.post("/api/v1/sessions", json=SCRIPTED)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def test_signalling_needs_a_token(secured_platform: SecuredPlatform) -> None:
    async with httpx.AsyncClient(base_url=secured_platform.url) as anonymous:
        assert (await anonymous.get("/api/v1/webrtc")).status_code == 401
        offer = {"type": "offer", "sdp": await _offer()}
        refused = await anonymous.post("/api/v1/sessions/x/webrtc", json=offer)
        assert refused.status_code == 401


async def test_another_users_or_an_ended_session_is_refused(
    secured_platform: SecuredPlatform, secured: httpx.AsyncClient
) -> None:
    sid = await _session(secured)
    offer = {"type": "offer", "sdp": await _offer()}
    bob = secured_platform.headers("bob")
    async with httpx.AsyncClient(base_url=secured_platform.url, headers=bob) as other:
        refused = await other.post(f"/api/v1/sessions/{sid}/webrtc", json=offer)
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "session_not_found"
    await secured.post(f"/api/v1/sessions/{sid}/end")
    ended = await secured.post(f"/api/v1/sessions/{sid}/webrtc", json=offer)
    assert ended.status_code == 409
    assert ended.json()["error"]["code"] == "session_ended"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"type": "offer", "sdp": "v=0\r\nthis is not an offer"}, "webrtc_offer_invalid"),
        ({"type": "answer", "sdp": "v=0"}, "validation_error"),
        ({"type": "offer", "sdp": "v=0", "extra": 1}, "validation_error"),
    ],
)
async def test_a_malformed_offer_is_refused(
    secured: httpx.AsyncClient, body: dict[str, object], code: str
) -> None:
    sid = await _session(secured)
    refused = await secured.post(f"/api/v1/sessions/{sid}/webrtc", json=body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == code


@pytest.mark.parametrize(("audio", "data"), [(False, True), (True, False)])
async def test_an_offer_without_audio_or_data_channel_is_refused(
    secured: httpx.AsyncClient, audio: bool, data: bool
) -> None:
    sid = await _session(secured)
    offer = {"type": "offer", "sdp": await _offer(audio=audio, data=data)}
    refused = await secured.post(f"/api/v1/sessions/{sid}/webrtc", json=offer)
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "webrtc_offer_invalid"
    assert ("audio" if not audio else "data channel") in error["message"]


@contextlib.asynccontextmanager
async def _gateway(nats_url: str, database_url: str) -> AsyncIterator[str]:
    """A gateway without auth; its WebRTC settings are read from the environment as it
    starts."""
    port = free_port()
    settings = GatewaySettings(
        nats_url=nats_url, database_url=SecretStr(database_url), http_port=port
    )
    async with serving(create_app(settings, AuthSettings.model_construct()), port) as url:
        yield url


async def test_webrtc_switched_off_is_a_404_for_the_client_to_fall_back(
    nats_url: str, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBRTC_ENABLED", "false")
    async with _gateway(nats_url, database_url) as url, httpx.AsyncClient(base_url=url) as client:
        config = await client.get("/api/v1/webrtc")
        assert config.status_code == 404
        assert config.json()["error"]["code"] == "webrtc_disabled"
        offer = {"type": "offer", "sdp": await _offer()}
        refused = await client.post("/api/v1/sessions/anything/webrtc", json=offer)
        assert refused.status_code == 404
        assert refused.json()["error"]["code"] == "webrtc_disabled"


async def test_ice_servers_come_from_the_environment_with_minted_turn_credentials(
    nats_url: str, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "WEBRTC_ICE_SERVERS",
        '[{"urls": "stun:stun.example.org:3478"},'
        ' {"urls": ["turn:turn.example.org:3478?transport=udp"]},'
        ' {"urls": "turns:relay.example.org:443", "username": "fixed", "credential": "pw"}]',
    )
    monkeypatch.setenv("WEBRTC_TURN_SECRET", "coturn-static-auth-secret")
    monkeypatch.setenv("WEBRTC_TURN_TTL_S", "3600")
    async with _gateway(nats_url, database_url) as url, httpx.AsyncClient(base_url=url) as client:
        before = time.time()
        config = (await client.get("/api/v1/webrtc")).json()
    stun, turn, fixed = config["ice_servers"]
    assert stun == {"urls": ["stun:stun.example.org:3478"], "username": None, "credential": None}
    assert (fixed["username"], fixed["credential"]) == ("fixed", "pw")
    # coturn's use-auth-secret: the user is "<expiry>:<user>", the password its HMAC-SHA1.
    expiry, user = turn["username"].split(":")
    assert user == "anonymous"
    assert before + 3600 - 1 <= int(expiry) <= time.time() + 3600
    digest = hmac.new(b"coturn-static-auth-secret", turn["username"].encode(), hashlib.sha1)
    assert turn["credential"] == base64.b64encode(digest.digest()).decode()
    assert config["data_channel"] == {
        "label": "parley",
        "id": 0,
        "negotiated": True,
        "ordered": True,
    }


def test_ice_server_urls_must_be_stun_or_turn() -> None:
    with pytest.raises(ValueError, match="stun"):
        IceServer(urls=["http://example.org"])
    settings = WebRtcSettings(ice_servers=[IceServer(urls=["turn:t.example.org"])])
    # Without a secret a TURN server without credentials is passed on as it is; a blank
    # secret (as .env.example has it) is no secret.
    assert settings.ice_servers_for("u", 0.0)[0].credential is None
    blank = WebRtcSettings(ice_servers=settings.ice_servers, turn_secret=SecretStr(" "))
    assert blank.turn_secret is None


async def test_the_outgoing_track_paces_real_time_and_flushes() -> None:
    track = PacedPcmTrack(24_000)
    track.write(bytes(960 * 10))  # ten 20 ms frames
    started = time.monotonic()
    for _ in range(5):
        frame = await track.recv()
        assert (frame.samples, frame.sample_rate) == (480, 24_000)
    # The first frame is read at once, each next one 20 ms later.
    assert 0.07 <= time.monotonic() - started < 0.2
    assert track.buffered_ms == pytest.approx(100)
    track.flush()
    assert track.buffered_ms == 0
    silent = await track.recv()
    assert not any(bytes(silent.planes[0]))
    assert (track.audio_frames_sent, track.frames_sent) == (5, 6)
    track.stop()
    with pytest.raises(MediaStreamError):
        await asyncio.wait_for(track.recv(), 1)
