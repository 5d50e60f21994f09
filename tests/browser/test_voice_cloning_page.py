"""The call page's "My voices" in Chromium: recordings chosen and dropped on the form are
uploaded with progress, the clone's status is shown until it is ready, the voice is picked in
the voice picker under "My voices", and a call then speaks with it (the ElevenLabs emulator
synthesises for the clone's voice id)."""

from __future__ import annotations

import asyncio
import base64
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from bench.audio import silence
from parley_clone.providers.registry import REGISTRY as CLONE_PROVIDERS
from parley_clone.testing import clone_worker, voice_sample
from parley_common.contracts.session import LlmProvider as LlmName
from parley_emulators.base import running
from parley_emulators.vendors import ElevenLabs
from parley_llm.providers.registry import get_provider as get_llm
from parley_llm.providers.scripted import ScriptedLlmProvider
from parley_tts.providers.registry import REGISTRY as TTS_PROVIDERS
from tests.browser.test_call_page import ARTIFACTS, _browser, _open, _until, _wav
from tests.browser.test_call_page import pytestmark as call_page_marks

pytestmark = call_page_marks  # e2e, and Debian's Chromium

KEY = "test-key"
SETTINGS = {"stt_provider": "scripted", "llm_provider": "scripted", "tts_provider": "elevenlabs"}
# Every text the status line shows, in order, so that the upload's progress can be checked.
WATCH_STATUS = """
document.addEventListener('DOMContentLoaded', () => {
  window.cloneStatuses = [];
  const status = document.getElementById('clone-status');
  new MutationObserver(() => window.cloneStatuses.push(status.textContent))
    .observe(status, {childList: true, characterData: true, subtree: true});
});
"""
ANSWERED = """window.parleyDebug.transcript.some(e =>
    e.role === 'assistant' && e.final && e.text.trim().length > 0)"""
DROP = """([b64, name]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], name, {type: 'audio/mpeg'}));
  return data;
}"""


@pytest.fixture(scope="module")
def monkeymodule() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
async def elevenlabs(
    platform_url: str, nats_url: str, pool: asyncpg.Pool, monkeymodule: pytest.MonkeyPatch
) -> AsyncIterator[ElevenLabs]:
    """The ElevenLabs emulator behind the platform's TTS workers and a clone worker."""
    vendor = ElevenLabs(api_key=KEY)
    async with running(vendor.app()) as url:
        monkeymodule.setenv("ELEVENLABS_API_KEY", KEY)
        monkeymodule.setenv("ELEVENLABS_BASE_URL", url)
        for registry in (TTS_PROVIDERS, CLONE_PROVIDERS):
            await registry.aclose()  # rebuilt for this emulator
        try:
            async with clone_worker(nats_url, pool):
                yield vendor
        finally:
            for registry in (TTS_PROVIDERS, CLONE_PROVIDERS):
                await registry.aclose()


@pytest.fixture
def scripted_reply() -> Iterator[ScriptedLlmProvider]:
    llm = get_llm(LlmName.SCRIPTED)
    assert isinstance(llm, ScriptedLlmProvider)
    saved = llm.reply
    llm.reply = "Hello, I am speaking with the voice you just cloned."
    yield llm
    llm.reply = saved


async def test_a_voice_uploaded_on_the_page_is_picked_and_speaks_in_a_call(
    platform_url: str, elevenlabs: ElevenLabs, scripted_reply: ScriptedLlmProvider
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        chosen = []
        for i, seconds in enumerate((8, 10), start=1):
            path = folder / f"take-{i}.wav"
            path.write_bytes(voice_sample(210.0, seconds, "wav"))
            chosen.append(str(path))
        dropped = base64.b64encode(voice_sample(210.0, 9, "mp3")).decode("ascii")
        async with _browser(_wav(silence(1000), folder / "quiet.wav"), loop=True) as browser:
            page = await _open(browser, platform_url, SETTINGS)
            await page.context.add_init_script(WATCH_STATUS)
            await page.reload()
            await _until(
                page, "[...document.getElementById('settings-tts').options]"
                ".some(o => o.value === 'elevenlabs' && !o.disabled)", 30,
            )  # fmt: skip
            await page.get_by_test_id("clone-name").fill("Browser voice")
            await page.get_by_test_id("clone-description").fill("Made on the call page")
            await page.get_by_test_id("clone-files").set_input_files(chosen)
            transfer = await page.evaluate_handle(DROP, [dropped, "dropped.mp3"])
            await page.dispatch_event(
                "[data-testid=clone-drop]", "drop", {"dataTransfer": transfer}
            )
            chosen_list = page.get_by_test_id("clone-chosen")
            assert (await chosen_list.inner_text()).count("MB") == 3
            await page.get_by_test_id("clone-submit").click()

            status = page.get_by_test_id("clone-status")
            await _until(
                page, "document.getElementById('clone-status').textContent.includes('is ready')", 60
            )
            assert "Browser voice" in await status.inner_text()
            statuses: list[str] = await page.evaluate("window.cloneStatuses")
            assert any(s.startswith("Uploading") for s in statuses), statuses
            item = page.get_by_test_id("my-voice").first
            assert await item.get_attribute("data-status") == "ready"
            assert "3 samples" in await item.inner_text()
            voice_id = await item.get_attribute("data-voice-id")
            assert voice_id

            # Picked in the voice picker, in its own group.
            await _until(page, f"document.getElementById('settings-voice').value === '{voice_id}'")
            group = await page.eval_on_selector(
                f"[data-testid=settings-voice] option[value='{voice_id}']",
                "o => o.parentElement.tagName === 'OPTGROUP' ? o.parentElement.label : null",
            )
            assert group == "My voices"
            await page.screenshot(path=ARTIFACTS / "call-page-my-voices.png")

            added = elevenlabs.state.last("/v1/voices/add")
            assert [f["filename"] for f in added.body["files"]] == [
                "sample-01.mp3",
                "sample-02.mp3",
                "sample-03.mp3",
            ]
            speaking = f"/v1/text-to-speech/{added.query['voice_id']}/stream-input"

            # A call with it: the answer is spoken by the emulator with the clone's voice id.
            await page.get_by_test_id("start-call").click()
            await _until(page, "window.parleyDebug.callState === 'live'", 30)
            await page.get_by_test_id("text-input").fill("Say hello.")
            await page.get_by_test_id("send-button").click()
            await _until(page, ANSWERED, 60)
            for _ in range(100):
                if any(r.path == speaking for r in elevenlabs.state.requests):
                    break
                await asyncio.sleep(0.1)
            assert any(r.path == speaking for r in elevenlabs.state.requests)
            await page.screenshot(path=ARTIFACTS / "call-page-my-voice-call.png")
            await page.get_by_test_id("end-call").click()
