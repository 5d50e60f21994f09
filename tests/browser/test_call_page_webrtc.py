"""The call page over WebRTC in Debian's headless Chromium with a fake microphone, on loopback:
a whole call with barge-in (Opus both ways, the events on the data channel), the same events
as over the WebSocket, the offer signed in by its Authorization header, and the WebSocket used
instead when WebRTC is off on the server or on the page."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, Request, WebSocket
from pydantic import SecretStr

from bench.audio import silence, speak
from bench.webrtc_call import comparable_events
from conftest import SecuredPlatform
from parley_common.testing import serving
from parley_common.tokens import AuthSettings
from parley_gateway.app import create_app
from parley_gateway.settings import GatewaySettings
from parley_launcher.embedded.process import free_port
from parley_llm.providers.scripted import ScriptedLlmProvider
from tests.browser.test_call_page import ARTIFACTS, QUESTION, _browser, _open, _until, _wav
from tests.browser.test_call_page import pytestmark as call_page_marks
from tests.conversation.conftest import SCRIPTED

pytestmark = call_page_marks  # e2e, and Debian's Chromium

LONG_REPLY = " ".join(f"This is sentence {i} of a long answer." for i in range(40))
ANSWERED = """window.parleyDebug.transcript.filter(e =>
    e.role === 'assistant' && e.final && e.text.trim().length > 0).length >= {n}"""
# The page's RTCPeerConnection, found through the client: its inbound audio and data channel.
RTC_STATS = """async () => {
    const report = await window.parleyDebug.client.ws.getStats();
    const out = {audio: null, channel: null, pair: null};
    report.forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'audio') out.audio = s;
        if (s.type === 'data-channel') out.channel = s;
        if (s.type === 'candidate-pair' && s.state === 'succeeded') out.pair = s;
    });
    const codec = out.audio && report.get(out.audio.codecId);
    return {
        energy: out.audio ? out.audio.totalAudioEnergy : 0,
        samples: out.audio ? out.audio.totalSamplesReceived : 0,
        codec: codec ? codec.mimeType : null,
        messages: out.channel ? out.channel.messagesReceived : 0,
        connected: !!out.pair,
    };
}"""


def _sockets(page: Page) -> list[str]:
    """The WebSockets the page opens from now on."""
    opened: list[str] = []

    def on_socket(ws: WebSocket) -> None:
        opened.append(ws.url)

    page.on("websocket", on_socket)
    return opened


def _webrtc_requests(page: Page) -> list[Request]:
    """The page's WebRTC signalling requests from now on."""
    seen: list[Request] = []

    def on_request(request: Request) -> None:
        if "/webrtc" in request.url:
            seen.append(request)

    page.on("request", on_request)
    return seen


async def test_a_whole_call_with_barge_in_over_webrtc(
    platform_url: str, scripted_llm: ScriptedLlmProvider
) -> None:
    scripted_llm.reply = LONG_REPLY
    with tempfile.TemporaryDirectory() as tmp:
        # Looped: the question, a pause that ends the turn, then the question again while
        # the long answer is playing.
        wav = _wav(await speak(QUESTION) + silence(3500), Path(tmp) / "loop.wav")
        settings = {**SCRIPTED, "interrupt_sensitivity": "medium"}
        async with _browser(wav, loop=True) as browser:
            page = await _open(browser, platform_url, settings)
            sockets = _sockets(page)
            signalling = _webrtc_requests(page)
            await page.get_by_test_id("start-call").click()
            await _until(page, "window.parleyDebug.callState === 'live'", 30)
            assert await page.evaluate("window.parleyDebug.transport") == "webrtc"
            # The spoken question is heard through the track and answered with audio on it.
            await _until(page, "window.parleyDebug.counters.samplesPlayed > 4800", 60)
            stats = await page.evaluate(RTC_STATS)
            assert stats["connected"]
            assert stats["codec"] == "audio/opus"
            assert stats["energy"] > 0
            assert stats["messages"] > 5  # the events come on the data channel
            # Barge-in: the question again over the long answer cuts it.
            await _until(page, "window.parleyDebug.transcript.some(e => e.interrupted)", 60)
            assert await page.evaluate("window.parleyDebug.counters.flushes") >= 1
            await page.get_by_test_id("interrupted-mark").first.wait_for(timeout=5000)
            # The question that barged in is heard to its end and answered in turn.
            await _until(
                page,
                """window.parleyDebug.transcript.filter(e => e.role === 'user' && e.final)
                    .length >= 2""",
                30,
            )
            await _until(page, ANSWERED.format(n=2), 30)
            await page.screenshot(path=ARTIFACTS / "call-page-phone-webrtc-interrupted.png")
            session_id = await page.evaluate("window.parleyDebug.sessionId")
            await page.get_by_test_id("end-call").click()
            await _until(page, "window.parleyDebug.callState === 'ended'", 15)
            assert sockets == []  # nothing went over a WebSocket
            assert [r.method for r in signalling] == ["GET", "POST"]
    async with httpx.AsyncClient(base_url=platform_url) as client:
        session = (await client.get(f"/api/v1/sessions/{session_id}")).json()
        entries = (await client.get(f"/api/v1/sessions/{session_id}/transcript")).json()
    assert session["status"] == "ended"
    assert session["interruptions_count"] >= 1
    assert any(e["role"] == "assistant" and e["interrupted"] for e in entries["entries"])


async def _typed_turn(page: Page) -> list[dict[str, Any]]:
    """The server events of one typed turn, as the page's client received them."""
    await page.get_by_test_id("start-call").click()
    await _until(page, "window.parleyDebug.callState === 'live'", 30)
    await page.evaluate(
        """() => {
            window.turnEvents = [];
            window.parleyDebug.client.on('message', (m) => window.turnEvents.push(m));
        }"""
    )
    await page.get_by_test_id("text-input").fill("hi")
    await page.get_by_test_id("send-button").click()
    await _until(page, "window.turnEvents.some(m => m.type === 'audio_end')", 30)
    events: list[dict[str, Any]] = await page.evaluate("window.turnEvents")
    await page.get_by_test_id("end-call").click()
    return events


async def test_the_data_channel_carries_the_websockets_events(
    platform_url: str, scripted_llm: ScriptedLlmProvider
) -> None:
    scripted_llm.reply = "Hello there. Nice to meet you."
    with tempfile.TemporaryDirectory() as tmp:
        async with _browser(_wav(silence(1000), Path(tmp) / "quiet.wav"), loop=True) as browser:
            over_webrtc = await _typed_turn(await _open(browser, platform_url, SCRIPTED))
            forced = await _open(browser, f"{platform_url}/?transport=websocket", SCRIPTED)
            over_websocket = await _typed_turn(forced)
    kinds = {e["type"] for e in over_webrtc}
    assert {"transcript", "response", "audio_start", "audio_end", "response_generated"} <= kinds
    assert comparable_events(over_webrtc) == comparable_events(over_websocket)


async def test_the_offer_is_signed_in_by_its_header(secured_platform: SecuredPlatform) -> None:
    token = secured_platform.token("alice")
    with tempfile.TemporaryDirectory() as tmp:
        async with _browser(_wav(silence(1000), Path(tmp) / "quiet.wav"), loop=True) as browser:
            page = await _open(browser, f"{secured_platform.url}/#token={token}", SCRIPTED)
            signalling = _webrtc_requests(page)
            await page.get_by_test_id("start-call").click()
            await _until(page, "window.parleyDebug.callState === 'live'", 30)
            assert await page.evaluate("window.parleyDebug.transport") == "webrtc"
            for request in signalling:
                assert (await request.all_headers())["authorization"] == f"Bearer {token}"
                assert token not in request.url
            await page.get_by_test_id("end-call").click()


@contextlib.asynccontextmanager
async def _gateway_without_webrtc(
    nats_url: str, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[str]:
    monkeypatch.setenv("WEBRTC_ENABLED", "false")
    port = free_port()
    settings = GatewaySettings(
        nats_url=nats_url, database_url=SecretStr(database_url), http_port=port
    )
    async with serving(create_app(settings, AuthSettings.model_construct()), port) as url:
        yield url


async def _answered_over_the_websocket(page: Page) -> None:
    sockets = _sockets(page)
    await page.get_by_test_id("start-call").click()
    await _until(page, "window.parleyDebug.callState === 'live'", 30)
    assert await page.evaluate("window.parleyDebug.transport") == "websocket"
    await page.get_by_test_id("text-input").fill("hi")
    await page.get_by_test_id("send-button").click()
    await _until(page, ANSWERED.format(n=1), 30)
    await _until(page, "window.parleyDebug.counters.samplesPlayed > 4800", 30)
    assert len(sockets) == 1
    assert "/ws" in sockets[0]
    await page.get_by_test_id("end-call").click()


async def test_the_page_falls_back_to_the_websocket(
    nats_url: str,
    database_url: str,
    platform_workers: None,
    platform_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with _browser(_wav(silence(1000), Path(tmp) / "quiet.wav"), loop=True) as browser:
            # WebRTC off on the server: the page asks, hears 404, and calls over the WebSocket.
            async with _gateway_without_webrtc(nats_url, database_url, monkeypatch) as url:
                await _answered_over_the_websocket(await _open(browser, url, SCRIPTED))
            # Off on the page: the server is not even asked.
            page = await _open(browser, f"{platform_url}/?transport=websocket", SCRIPTED)
            signalling = _webrtc_requests(page)
            await _answered_over_the_websocket(page)
            assert signalling == []
