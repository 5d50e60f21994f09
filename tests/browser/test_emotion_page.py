"""The call page shows the tone of what the user said: with "Detect tone of voice" on, a
spoken turn in real headless Chromium (a fake microphone playing a WAV) gets its emotion
badge beside the user's line, with every label's score in its title."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.audio import silence, speak
from parley_stt.providers.scripted import ScriptedSttProvider
from tests.browser.test_call_page import ARTIFACTS, _browser, _open, _until, _wav
from tests.browser.test_call_page import pytestmark as call_page_marks
from tests.conversation.conftest import SCRIPTED

pytestmark = call_page_marks
PLEASED = "This is wonderful, thank you so much."
SETTINGS = {**SCRIPTED, "interrupt_sensitivity": "high", "detect_emotion": True}
USER_BADGE = "[data-testid=transcript-entry][data-role=user] [data-testid=emotion]"


async def test_the_users_line_shows_its_tone(
    platform_url: str, scripted_stt: ScriptedSttProvider
) -> None:
    scripted_stt.script = [PLEASED]
    with tempfile.TemporaryDirectory() as tmp:
        wav = _wav(silence(1000) + await speak(PLEASED) + silence(20000), Path(tmp) / "q.wav")
        async with _browser(wav, loop=False) as browser:
            page = await _open(browser, platform_url, SETTINGS)
            assert await page.get_by_test_id("settings-emotion").is_checked()
            await page.get_by_test_id("start-call").click()
            badge = page.locator(USER_BADGE).first
            await badge.wait_for(timeout=60_000)
            assert await badge.get_attribute("data-emotion") == "happy"
            assert "happy" in await badge.inner_text()
            title = await badge.get_attribute("title") or ""
            assert "happy" in title
            assert "%" in title
            user = next(
                e
                for e in await page.evaluate("window.parleyDebug.transcript")
                if e["role"] == "user" and e["final"]
            )
            assert (user["text"], user["emotion"]["label"]) == (PLEASED, "happy")
            # The assistant's answer has no tone of its own.
            await _until(page, "window.parleyDebug.transcript.some(e => e.role === 'assistant')")
            assistant = page.locator("[data-testid=transcript-entry][data-role=assistant]")
            assert await assistant.locator("[data-testid=emotion]").count() == 0
            ARTIFACTS.mkdir(exist_ok=True)
            # The transcript may be drawn again meanwhile: the whole page, not the element.
            await page.screenshot(path=ARTIFACTS / "call-page-emotion.png", full_page=True)
            await page.get_by_test_id("end-call").click()
