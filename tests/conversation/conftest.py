"""The conversation tests share the root conftest's ``platform_url``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
