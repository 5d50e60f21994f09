"""The call page in real headless Chromium (Debian's), with a fake microphone that plays a
spoken question from a WAV file: a whole call, a barge-in, the provider pickers, and a call
taken over by another window."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import tempfile
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from playwright.async_api import Browser, Page, async_playwright

from bench.audio import INPUT_RATE, silence, speak, word_error_rate
from parley_common.contracts.session import LlmProvider as LlmName
from parley_llm.providers.registry import get_provider as get_llm
from parley_llm.providers.scripted import ScriptedLlmProvider

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium"),
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
QUESTION = "What is the capital of France?"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def _wav(pcm: bytes, path: Path) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(INPUT_RATE)
        out.writeframes(pcm)
    return path


@pytest.fixture(scope="module")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@contextlib.asynccontextmanager
async def _browser(wav: Path, loop: bool) -> AsyncIterator[Browser]:
    capture = str(wav) if loop else f"{wav}%noloop"
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={capture}",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        try:
            yield browser
        finally:
            await browser.close()


async def _open(browser: Browser, url: str, settings: dict[str, Any]) -> Page:
    context = await browser.new_context(viewport=PHONE)  # type: ignore[arg-type]
    await context.add_init_script(
        f"localStorage.setItem('parley.settings.v1', {json.dumps(json.dumps(settings))});"
    )
    page = await context.new_page()
    await page.goto(url)
    return page


async def _transcript(page: Page) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = await page.evaluate("window.parleyDebug.transcript")
    return entries


async def _until(page: Page, script: str, within_s: float = 60) -> None:
    await page.wait_for_function(script, timeout=within_s * 1000)


async def test_a_whole_call_in_the_browser(platform_url: str, artifacts: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        wav = _wav(silence(1500) + await speak(QUESTION) + silence(30000), Path(tmp) / "q.wav")
        settings = {
            "stt_provider": "local",
            "llm_provider": "local",
            "tts_provider": "local",
            "interrupt_sensitivity": "high",
            "response_style": "concise",
            "language": "en",
        }
        async with _browser(wav, loop=False) as browser:
            page = await _open(browser, platform_url, settings)
            await page.screenshot(path=artifacts / "call-page-phone-idle.png")
            await page.get_by_test_id("start-call").click()
            # The spoken question appears, then the answer, and it is played.
            await _until(
                page, "window.parleyDebug.transcript.some(e => e.role === 'user' && e.final)", 90
            )
            heard = next(e["text"] for e in await _transcript(page) if e["role"] == "user")
            # The fake microphone goes through Chromium's echo cancellation, noise suppression
            # and gain control, so recognition is held to a looser bar than on raw audio.
            assert word_error_rate(QUESTION, heard) <= 0.35, heard
            await _until(
                page,
                """window.parleyDebug.transcript.some(e =>
                e.role === 'assistant' && e.final && e.text.trim().length > 0)""",
                120,
            )
            await _until(page, "window.parleyDebug.counters.samplesPlayed > 4800", 60)
            assert (await page.evaluate("window.parleyDebug.timerText")) != "00:00"
            await page.screenshot(path=artifacts / "call-page-phone-call.png")
            # A typed message in the same call is answered.
            answers = sum(1 for e in await _transcript(page) if e["role"] == "assistant")
            await page.get_by_test_id("text-input").fill("Say hello in one short sentence.")
            await page.get_by_test_id("send-button").click()
            await _until(
                page,
                f"""window.parleyDebug.transcript.filter(e =>
                e.role === 'assistant' && e.final).length > {answers}""",
                120,
            )
            await page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]
            await page.screenshot(path=artifacts / "call-page-desktop-call.png")
            session_id = await page.evaluate("window.parleyDebug.sessionId")
            await page.get_by_test_id("end-call").click()
            async with httpx.AsyncClient(base_url=platform_url) as client:
                for _ in range(50):
                    status = (await client.get(f"/api/v1/sessions/{session_id}")).json()
                    if status["status"] == "ended":
                        break
                    await asyncio.sleep(0.1)
                assert status["status"] == "ended"
                transcript = await client.get(f"/api/v1/sessions/{session_id}/transcript")
            roles = [e["role"] for e in transcript.json()["entries"]]
            assert roles[:2] == ["user", "assistant"]


async def test_barge_in_in_the_browser(platform_url: str, artifacts: Path) -> None:
    llm = get_llm(LlmName.SCRIPTED)
    assert isinstance(llm, ScriptedLlmProvider)
    saved = llm.reply
    llm.reply = " ".join(f"This is sentence {i} of a long answer." for i in range(40))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            # Looped: the question, a pause that ends the turn, then the question again
            # while the long answer is playing.
            wav = _wav(await speak(QUESTION) + silence(3500), Path(tmp) / "loop.wav")
            settings = {
                "stt_provider": "scripted",
                "llm_provider": "scripted",
                "tts_provider": "scripted",
                "interrupt_sensitivity": "medium",
            }
            async with _browser(wav, loop=True) as browser:
                page = await _open(browser, platform_url, settings)
                await page.get_by_test_id("start-call").click()
                await _until(page, "window.parleyDebug.counters.samplesPlayed > 0", 60)
                await _until(page, "window.parleyDebug.transcript.some(e => e.interrupted)", 60)
                assert (await page.evaluate("window.parleyDebug.counters.flushes")) >= 1
                mark = page.get_by_test_id("interrupted-mark").first
                await mark.wait_for(timeout=5000)
                await page.screenshot(path=artifacts / "call-page-phone-interrupted.png")
                await page.get_by_test_id("end-call").click()
    finally:
        llm.reply = saved


async def _options(page: Page, kind: str) -> list[dict[str, Any]]:
    options: list[dict[str, Any]] = await page.eval_on_selector_all(
        f"[data-testid=settings-{kind}] option",
        "os => os.map(o => ({name: o.value, disabled: o.disabled, text: o.textContent}))",
    )
    return options


async def _providers_once_up(url: str) -> dict[str, Any]:
    """The providers answer once every service's workers reply (they may still be starting)."""
    async with httpx.AsyncClient(base_url=url) as client:
        for _ in range(30):
            listing: dict[str, Any] = (await client.get("/api/v1/providers")).json()
            if all(any(p["available"] for p in listing[k]) for k in ("stt", "llm", "tts")):
                return listing
            await asyncio.sleep(1)
    raise AssertionError(f"no usable providers: {listing}")


async def test_the_pickers_offer_only_usable_providers(platform_url: str) -> None:
    listing = await _providers_once_up(platform_url)
    # The page gets this very answer (the server's), then one where no model is up yet.
    answer = {"body": listing}
    filled = "['stt', 'llm', 'tts'].every(k => document.getElementById(`settings-${k}`).length)"
    with tempfile.TemporaryDirectory() as tmp:
        async with _browser(_wav(silence(500), Path(tmp) / "quiet.wav"), loop=True) as browser:
            page = await _open(browser, platform_url, {"llm_provider": "local"})
            await page.route("**/api/v1/providers", lambda r: r.fulfill(json=answer["body"]))
            await page.reload()
            await _until(page, filled, 30)
            for kind in ("stt", "llm", "tts"):
                options = await _options(page, kind)
                usable = [p["name"] for p in listing[kind] if p["available"]]
                assert [o["name"] for o in options if not o["disabled"]] == usable
                shown = {o["name"]: o["text"] for o in options if o["disabled"]}
                for p in listing[kind]:
                    if not p["available"]:
                        assert p["reason"] in shown.pop(p["name"]), (kind, p)
                assert not shown, f"{kind}: disabled options the server did not list"
                picked = await page.get_by_test_id(f"settings-{kind}").input_value()
                assert picked in usable

            # No assistant model is up yet: the picker offers none and says why, and the page
            # asks again until one is.
            nothing = {"name": "local", "available": False, "reason": "no llm worker is running"}
            answer["body"] = {**listing, "llm": [nothing]}
            await page.reload()
            await _until(page, filled, 30)
            assert not [o for o in await _options(page, "llm") if not o["disabled"]]
            note = page.get_by_test_id("settings-llm-note")
            assert "no llm worker is running" in await note.inner_text()
            answer["body"] = listing
            await _until(page, "document.getElementById('llm-note').textContent === ''", 20)
            usable_llm = [p["name"] for p in listing["llm"] if p["available"]]
            offered = [o["name"] for o in await _options(page, "llm") if not o["disabled"]]
            assert offered == usable_llm
            if "local" in usable_llm:
                assert await page.get_by_test_id("settings-llm").input_value() == "local"


async def test_a_call_opened_in_another_window_is_given_up(
    platform_url: str, artifacts: Path
) -> None:
    settings = {"stt_provider": "scripted", "llm_provider": "scripted", "tts_provider": "scripted"}
    with tempfile.TemporaryDirectory() as tmp:
        async with _browser(_wav(silence(1000), Path(tmp) / "quiet.wav"), loop=True) as browser:
            page = await _open(browser, platform_url, settings)
            await page.get_by_test_id("start-call").click()
            await _until(page, "window.parleyDebug.callState === 'live'", 30)
            sid = await page.evaluate("window.parleyDebug.sessionId")
            ws_url = platform_url.replace("http://", "ws://") + f"/api/v1/sessions/{sid}/ws"
            async with websockets.connect(ws_url) as other_window:
                assert json.loads(await other_window.recv())["type"] == "ready"
                await _until(page, "window.parleyDebug.callState === 'ended'", 15)
                banner = page.get_by_test_id("error-banner")
                assert "continues in another window" in await banner.inner_text()
                await page.screenshot(path=artifacts / "call-page-phone-replaced.png")
                # The page does not come back for the session: the other window keeps it.
                loop = asyncio.get_running_loop()
                until = loop.time() + 3
                while (left := until - loop.time()) > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(other_window.recv(), left)
                await other_window.send(json.dumps({"type": "ping", "ts": 1.0}))
                assert json.loads(await other_window.recv())["type"] == "pong"
            async with httpx.AsyncClient(base_url=platform_url) as client:
                session = (await client.get(f"/api/v1/sessions/{sid}")).json()
            assert session["status"] == "active"
