"""The call page shows the tone of what the user said: with "Detect tone of voice" on, a
spoken turn in real headless Chromium (a fake microphone playing a WAV) gets its emotion
badge beside the user's line, with every label's score in its title."""

from __future__ import annotations

import json
import shutil
import tempfile
import wave
from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from bench.audio import INPUT_RATE, silence, speak
from parley_stt.providers.scripted import ScriptedSttProvider

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium"),
]
PLEASED = "This is wonderful, thank you so much."
SETTINGS = {
    "stt_provider": "scripted",
    "llm_provider": "scripted",
    "tts_provider": "scripted",
    "interrupt_sensitivity": "high",
    "detect_emotion": True,
}


async def test_the_users_line_shows_its_tone(
    platform_url: str, scripted_stt: ScriptedSttProvider
) -> None:
    scripted_stt.script = [PLEASED]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pleased.wav"
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(INPUT_RATE)
            out.writeframes(silence(1000) + await speak(PLEASED) + silence(20000))
        async with async_playwright() as p:
            browser = await p.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--use-fake-ui-for-media-stream",
                    "--use-fake-device-for-media-stream",
                    f"--use-file-for-fake-audio-capture={path}%noloop",
                    "--autoplay-policy=no-user-gesture-required",
                ],
            )
            try:
                page = await browser.new_page()
                saved = json.dumps(json.dumps(SETTINGS))
                await page.add_init_script(f"localStorage.setItem('parley.settings.v1', {saved});")
                await page.goto(platform_url)
                assert await page.get_by_test_id("settings-emotion").is_checked()
                await page.get_by_test_id("start-call").click()
                badge = page.locator(
                    "[data-testid=transcript-entry][data-role=user] [data-testid=emotion]"
                ).first
                await badge.wait_for(timeout=60_000)
                assert await badge.get_attribute("data-emotion") == "happy"
                assert "happy" in await badge.inner_text()
                title = await badge.get_attribute("title") or ""
                assert "happy" in title
                assert "%" in title
                entries = await page.evaluate("window.parleyDebug.transcript")
                user = next(e for e in entries if e["role"] == "user" and e["final"])
                assert user["text"] == PLEASED
                assert user["emotion"]["label"] == "happy"
                # The assistant's answer has no tone of its own.
                assistant = page.locator("[data-testid=transcript-entry][data-role=assistant]")
                await assistant.first.wait_for(timeout=30_000)
                assert await assistant.locator("[data-testid=emotion]").count() == 0
                await page.get_by_test_id("end-call").click()
            finally:
                await browser.close()
