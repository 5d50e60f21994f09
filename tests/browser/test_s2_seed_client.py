"""S2's own JavaScript ``VoiceChatClient`` (from S2's guide, copied unchanged into
``s2_seed_client.js``; only its hard-coded ``ws://localhost:8000`` becomes this gateway's
address) in Debian's headless Chromium with a fake microphone playing a spoken question: it
records with MediaRecorder (WebM/Opus), sends ``audio_stop`` and then the blob, gets S2's
events back and plays the answer file with ``new Audio()``, once per answer format."""

from __future__ import annotations

import contextlib
import json
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page

from bench.audio import silence, speak, word_error_rate
from conftest import SecuredPlatform
from parley_common.contracts.session import LlmProvider as LlmName
from parley_llm.providers.registry import get_provider as get_llm
from parley_llm.providers.scripted import ScriptedLlmProvider
from tests.browser.test_call_page import _browser, _wav
from tests.browser.test_call_page import pytestmark as call_page_marks
from tests.conversation.conftest import SCRIPTED

pytestmark = call_page_marks  # e2e, and Debian's Chromium

SEED_CLIENT = Path(__file__).with_name("s2_seed_client.js")
SEED_BASE_URL = "ws://localhost:8000"
QUESTION = "What is the capital of France?"
REPLY = "Paris is the capital."

# What the page around the client provides: the display hooks the class calls (S2's guide
# leaves them to the page), and a record of every Audio element the class plays.
PAGE = """([chatbot, token]) => {
    window.s2 = {transcripts: [], responses: [], audio: []};
    const play = HTMLMediaElement.prototype.play;
    HTMLMediaElement.prototype.play = function () {
        const entry = {events: []};
        window.s2.audio.push(entry);
        for (const name of ['playing', 'ended', 'error']) {
            this.addEventListener(name, () => entry.events.push(name));
        }
        return play.call(this);
    };
    const client = new VoiceChatClient(chatbot, token);
    client.displayTranscription = (text) => window.s2.transcripts.push(text);
    client.displayResponse = (text) => window.s2.responses.push(text);
    window.s2.client = client;
    client.connect();
}"""


def _seed_source(platform: SecuredPlatform) -> str:
    source = SEED_CLIENT.read_text()
    assert source.count(SEED_BASE_URL) == 1
    return source.replace(SEED_BASE_URL, platform.url.replace("http://", "ws://"))


@contextlib.asynccontextmanager
async def _seed_page(platform: SecuredPlatform, wav: Path) -> AsyncIterator[tuple[Page, list[str]]]:
    """A page of the gateway's origin (a secure context: the microphone is allowed) with
    the seed's class loaded; yields it and its console lines."""
    async with _browser(wav, loop=False) as browser:
        page = await browser.new_page()
        console: list[str] = []
        page.on("console", lambda message: console.append(message.text))
        await page.goto(f"{platform.url}/health")
        await page.add_script_tag(content=_seed_source(platform))
        yield page, console


async def _chatbot(platform: SecuredPlatform, user: str, audio_format: str) -> str:
    chatbot = f"chatbot-{uuid.uuid4().hex[:8]}"
    # The real Whisper hears the browser's recording; the answer is scripted, spoken as a tone.
    config = {**SCRIPTED, "stt_provider": "local", "stt_language": "en"}
    async with httpx.AsyncClient(base_url=platform.url, headers=platform.headers(user)) as c:
        stored = await c.put(
            f"/api/v1/voice/config/{chatbot}", json={**config, "audio_format": audio_format}
        )
    assert stored.status_code == 200, stored.text
    return chatbot


async def _until(page: Page, script: str, within_s: float = 60) -> None:
    await page.wait_for_function(script, timeout=within_s * 1000)


@pytest.mark.parametrize("audio_format", ["webm", "mp3"])
async def test_the_seeds_js_client_records_sends_and_plays_the_answer(
    secured_platform: SecuredPlatform, audio_format: str
) -> None:
    llm = get_llm(LlmName.SCRIPTED)
    assert isinstance(llm, ScriptedLlmProvider)
    saved, llm.reply = llm.reply, REPLY
    try:
        s2, console = await _call(secured_platform, audio_format)
    finally:
        llm.reply = saved
    # The fake microphone goes through Chromium's echo cancellation, noise suppression and
    # gain control, so recognition is held to a looser bar than on raw audio.
    assert len(s2["transcripts"]) == 1
    assert word_error_rate(QUESTION, s2["transcripts"][0]) <= 0.35, s2["transcripts"]
    assert s2["responses"] == [REPLY]
    # One answer file, played from start to end, and nothing went wrong on the way.
    assert [a["events"] for a in s2["audio"]] == [["playing", "ended"]], json.dumps(s2)
    assert "Processing complete" in console
    assert not [line for line in console if "error" in line.lower()], console


async def _call(platform: SecuredPlatform, audio_format: str) -> tuple[dict[str, Any], list[str]]:
    """One question asked through the seed's client: what its page saw, and its console."""
    user = f"user-{uuid.uuid4().hex[:8]}"
    chatbot = await _chatbot(platform, user, audio_format)
    speech = await speak(QUESTION)
    with tempfile.TemporaryDirectory() as tmp:
        wav = _wav(silence(300) + speech + silence(3000), Path(tmp) / "question.wav")
        async with _seed_page(platform, wav) as (page, console):
            await page.evaluate(PAGE, [chatbot, platform.token(user)])
            await _until(page, "window.s2.client.ws.readyState === WebSocket.OPEN", 20)
            # Its ping on open is answered with S2's pong.
            for _ in range(50):
                if "Connection alive" in console:
                    break
                await page.wait_for_timeout(100)
            assert "Connection alive" in console
            await page.evaluate("window.s2.client.startRecording()")
            await _until(page, "window.s2.client.mediaRecorder?.state === 'recording'", 10)
            # Hold the button while the question is spoken, then release it.
            await page.wait_for_timeout(300 + len(speech) // 32 + 700)
            await page.evaluate("window.s2.client.stopRecording()")
            await _until(page, "window.s2.responses.length > 0", 90)
            await _until(page, "window.s2.audio.some(a => a.events.includes('ended'))", 30)
            s2: dict[str, Any] = await page.evaluate(
                "({transcripts: window.s2.transcripts, responses: window.s2.responses,"
                " audio: window.s2.audio})"
            )
    return s2, console
