"""The call page in Chromium against a gateway that requires tokens: the link `parley up`
prints (`/#token=…`) signs the page in for a whole call (and the end of it when the page is
left) and leaves the address bar; without a token, or once it has expired, the page says how to
sign in and does not try again."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
from playwright.async_api import Page, Request, WebSocket
from pydantic import SecretStr

from bench.audio import silence, speak
from conftest import SecuredPlatform
from parley_common.tokens import AuthSettings
from tests.browser.test_call_page import (
    ARTIFACTS,
    QUESTION,
    _browser,
    _open,
    _until,
    _wav,
)
from tests.browser.test_call_page import pytestmark as call_page_marks
from tests.conversation.conftest import SCRIPTED

pytestmark = call_page_marks  # e2e, and Debian's Chromium

SIGN_IN = "parley token --user NAME"
ANSWERED = """window.parleyDebug.transcript.some(e =>
    e.role === 'assistant' && e.final && e.text.trim().length > 0)"""


def _traffic(page: Page) -> tuple[list[str], list[str]]:
    """The URLs of the WebSockets and of the API requests the page opens from now on."""
    sockets: list[str] = []
    requests: list[str] = []

    def opened(ws: WebSocket) -> None:
        sockets.append(ws.url)

    def sent(request: Request) -> None:
        if "/api/" in request.url:
            requests.append(request.url)

    page.on("websocket", opened)
    page.on("request", sent)
    return sockets, requests


def _token_of(url: str) -> str | None:
    return parse_qs(urlsplit(url).query).get("token", [None])[0]


async def _banner_says(page: Page, *parts: str) -> None:
    banner = page.get_by_test_id("error-banner")
    await banner.wait_for(state="visible", timeout=15000)
    text = await banner.inner_text()
    assert [p for p in parts if p not in text] == [], text


async def _quiet_for(page: Page, sockets: list[str], requests: list[str], seconds: float) -> None:
    """Nothing more is tried for ``seconds``: no socket, no API request, no reconnecting."""
    sockets_before, requests_before = len(sockets), len(requests)
    await asyncio.sleep(seconds)
    assert len(sockets) == sockets_before, sockets
    assert len(requests) == requests_before, requests
    assert await page.evaluate("window.parleyDebug.callState") in ("idle", "ended")


async def test_the_printed_link_signs_the_page_in(secured_platform: SecuredPlatform) -> None:
    url = secured_platform.url
    token = secured_platform.token("alice")
    with tempfile.TemporaryDirectory() as tmp:
        wav = _wav(silence(1000) + await speak(QUESTION) + silence(30000), Path(tmp) / "q.wav")
        async with _browser(wav, loop=False) as browser:
            # The WebSocket's token is what is checked here (WebRTC's offer carries it as a
            # header: tests/browser/test_call_page_webrtc.py).
            page = await _open(browser, f"{url}/?transport=websocket#token={token}", SCRIPTED)
            await _until(page, "!location.href.includes('token')", 10)
            assert page.url == f"{url}/?transport=websocket"
            # The tab keeps it: a reload (the address has no token any more) is still signed in.
            await page.reload()
            sockets, _ = _traffic(page)
            await page.get_by_test_id("start-call").click()
            await _until(page, "window.parleyDebug.callState === 'live'", 30)
            await _until(page, ANSWERED, 60)
            await _until(page, "window.parleyDebug.counters.samplesPlayed > 4800", 60)
            assert await page.get_by_test_id("error-banner").is_hidden()
            assert [_token_of(s) for s in sockets] == [token]
            session_id = await page.evaluate("window.parleyDebug.sessionId")
            assert token not in page.url
            # Leaving the page ends the session: its keepalive request carries the token too.
            await page.goto("about:blank")
    async with httpx.AsyncClient(base_url=url) as http:
        assert (await http.get(f"/api/v1/sessions/{session_id}")).status_code == 401
        for _ in range(50):
            session = (
                await http.get(
                    f"/api/v1/sessions/{session_id}", headers=secured_platform.headers("alice")
                )
            ).json()
            if session["status"] == "ended":
                break
            await asyncio.sleep(0.1)
    # The session is the token's user's, not a name the page made up.
    assert session["user_id"] == "alice"
    assert session["status"] == "ended"


async def test_without_a_good_token_the_page_says_how_to_sign_in(
    secured_platform: SecuredPlatform,
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        async with _browser(_wav(silence(500), Path(tmp) / "quiet.wav"), loop=True) as browser:
            for link, title, detail in (
                ("/", "Sign-in needed", "needs a sign-in token"),
                ("/#token=abc.def.ghi", "Sign-in token not accepted", "malformed"),
            ):
                page = await _open(browser, secured_platform.url + link, SCRIPTED)
                # The pickers' GET /providers was refused: the page says so at once.
                await _banner_says(page, title, detail, SIGN_IN)
                sockets, requests = _traffic(page)
                await page.get_by_test_id("start-call").click()
                await _until(page, "window.parleyDebug.callState === 'idle'", 15)
                assert requests == [f"{secured_platform.url}/api/v1/sessions"]
                await _banner_says(page, title, SIGN_IN)
                await _quiet_for(page, sockets, requests, 3)
                assert sockets == []
                if link == "/":
                    await page.screenshot(path=ARTIFACTS / "call-page-phone-sign-in.png")


async def test_a_token_that_expires_ends_the_call_at_the_next_connection(
    secured_platform: SecuredPlatform,
) -> None:
    # Accepted for a few seconds only: the gateway allows this much clock difference.
    leeway_s = AuthSettings(secret=SecretStr(secured_platform.secret)).leeway_s
    valid_s = 12
    token = secured_platform.token("alice", ttl_s=valid_s - leeway_s)
    refused_after = jwt.decode(token, options={"verify_signature": False})["exp"] + leeway_s
    with tempfile.TemporaryDirectory() as tmp:
        async with _browser(_wav(silence(500), Path(tmp) / "quiet.wav"), loop=True) as browser:
            link = f"{secured_platform.url}/?transport=websocket#token={token}"
            page = await _open(browser, link, SCRIPTED)
            sockets, requests = _traffic(page)
            await page.get_by_test_id("start-call").click()
            await _until(page, "window.parleyDebug.callState === 'live'", valid_s)
            # The open call goes on past the token's end; the next connection is refused.
            await asyncio.sleep(max(0.0, refused_after - time.time() + 1))
            assert await page.evaluate("window.parleyDebug.callState") == "live"
            await page.evaluate("window.parleyDebug.client.ws.close(4000, 'network blip')")
            await _until(page, "window.parleyDebug.callState === 'ended'", 15)
            await _banner_says(page, "Sign-in token not accepted", "expired", SIGN_IN)
            await _quiet_for(page, sockets, requests, 3)
            assert [_token_of(s) for s in sockets] == [token, token]
