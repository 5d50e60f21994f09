"""The conversation tests share the root conftest's ``platform_url``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.audio import silence, speak
from bench.call import Call
from parley_common.contracts.session import LlmProvider as LlmName
from parley_llm.providers.registry import get_provider as get_llm
from parley_llm.providers.scripted import ScriptedLlmProvider

SCRIPTED = {"stt_provider": "scripted", "llm_provider": "scripted", "tts_provider": "scripted"}


@pytest.fixture
def scripted_llm() -> Iterator[ScriptedLlmProvider]:
    """The scripted LLM the in-process workers share, its reply and pace restored after."""
    provider = get_llm(LlmName.SCRIPTED)
    assert isinstance(provider, ScriptedLlmProvider)
    reply, delay = provider.reply, provider.delta_delay_s
    yield provider
    provider.reply, provider.delta_delay_s = reply, delay


async def one_spoken_turn(platform_url: str, question: str = "What time is it?") -> str:
    """A scripted session that hears ``question`` and answers it to the end of its audio;
    returns the session id."""
    call = await Call.start(platform_url, **SCRIPTED)
    try:
        await call.say(await speak(question) + silence(1200), realtime=False)
        await call.wait_for("audio_end", within_s=30)
    finally:
        await call.close()
    return call.session_id
