"""The OpenAI-protocol adapters' own requests: OpenAI's token budget and usage chunk, a
compatible server's older budget field and optional key, Groq's usage in ``x_groq``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from parley_llm.providers.base import ChatMessage, LlmUsage
from parley_llm.providers.openai_chat import NO_KEY, OPENAI_COMPATIBLE, OpenAIChatProvider

if TYPE_CHECKING:
    from tests.conftest import Emulate

ASK = [ChatMessage("system", "Be brief."), ChatMessage("user", "hello")]


async def test_openai_asks_for_usage_and_sends_max_completion_tokens(emulate: Emulate) -> None:
    async with emulate("openai") as served:
        usage = LlmUsage()
        text = "".join([d async for d in served.provider().stream(ASK, 77, usage=usage)])

        sent = served.state.last("/v1/chat/completions")
    assert text == "You said: hello"
    assert sent.body["stream_options"] == {"include_usage": True}
    assert sent.body["max_completion_tokens"] == 77
    assert "max_tokens" not in sent.body
    assert sent.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello"},
    ]
    assert sent.headers["authorization"] == f"Bearer {served.key}"
    assert (usage.input_tokens, usage.output_tokens, usage.cached_input_tokens) == (3, 3, 0)


async def test_a_compatible_server_gets_max_tokens(emulate: Emulate) -> None:
    async with emulate("openai_compatible") as served:
        assert [d async for d in served.provider().stream(ASK, 33)]
        sent = served.state.last("/v1/chat/completions")
    assert sent.body["max_tokens"] == 33
    assert "max_completion_tokens" not in sent.body


async def test_a_compatible_server_never_sees_openais_key_or_account(
    emulate: Emulate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-real-secret")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-openai-account")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-openai-account")
    async with emulate("openai_compatible") as served:
        served.state.api_key = ""  # this server checks no key
        provider = OpenAIChatProvider(
            name="openai_compatible",
            vendor=OPENAI_COMPATIBLE,
            api_key=NO_KEY,
            base_url=f"{served.url}/v1",
            model="llama3.2",
            timeout_s=5,
            max_retries=0,
            compatible_server=True,
        )
        try:
            assert "".join([d async for d in provider.stream(ASK, 20)]) == "You said: hello"
        finally:
            await provider.aclose()
        sent = served.state.last("/v1/chat/completions")
    assert sent.headers["authorization"] == f"Bearer {NO_KEY}"
    assert "sk-openai-real-secret" not in str(sent.headers)
    assert "openai-organization" not in sent.headers
    assert "openai-project" not in sent.headers
    assert sent.body["model"] == "llama3.2"


async def test_groq_counts_come_from_x_groq(emulate: Emulate) -> None:
    async with emulate("groq") as served:
        usage = LlmUsage()
        text = "".join([d async for d in served.provider().stream(ASK, 10, usage=usage)])
        sent = served.state.last("/openai/v1/chat/completions")
    assert text == "You said: hello"
    # The Groq SDK asks for no usage chunk: the counts can only have come from x_groq.
    assert "stream_options" not in sent.body
    assert sent.body["max_completion_tokens"] == 10
    assert (usage.input_tokens, usage.output_tokens) == (3, 3)
