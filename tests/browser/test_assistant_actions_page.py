"""The call page acts on what the assistant's tools ask: ``switch_to_text`` (published on the
session's status subject, as a dialogue worker does when its model calls that tool) reaches
real headless Chromium through the gateway, which tells the user to continue in text and puts
the cursor in the message box."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.audio import silence
from parley_common.bus import Bus, MessageMeta
from parley_common.contracts import subjects
from parley_common.contracts.bus import AssistantAction
from parley_common.contracts.subjects import SessionChannel
from tests.browser.test_call_page import _browser, _open, _until, _wav
from tests.browser.test_call_page import pytestmark as call_page_marks
from tests.conversation.conftest import SCRIPTED

pytestmark = call_page_marks


async def test_switch_to_text_points_the_user_at_the_message_box(
    platform_url: str, bus: Bus
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with _browser(_wav(silence(30_000), Path(tmp) / "quiet.wav"), loop=True) as browser:
            page = await _open(browser, platform_url, SCRIPTED)
            await page.get_by_test_id("start-call").click()
            await _until(page, "window.parleyDebug.callState === 'live'")
            sid = await page.evaluate("window.parleyDebug.sessionId")
            assert await page.locator("#text-input").evaluate("e => e !== document.activeElement")

            status = subjects.session(sid, SessionChannel.STATUS)
            action = AssistantAction(turn_id=1, action="switch_to_text")
            await bus.publish(status, action, MessageMeta(session_id=sid, turn_id=1))

            banner = page.get_by_test_id("error-banner")
            await banner.wait_for(state="visible", timeout=10_000)
            assert await banner.get_attribute("data-kind") == "info"
            assert "Continue in text" in await banner.inner_text()
            assert await page.locator("#text-input").evaluate("e => e === document.activeElement")
            await page.get_by_test_id("end-call").click()
