"""Choosing a cloud LLM by name: unavailable with the reason until configured, then built
from the environment (key, base URL, default model) and streaming from there."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from parley_common.contracts.session import LlmProvider as LlmName
from parley_common.errors import ProviderUnavailableError
from parley_llm.providers.base import ChatMessage, LlmUsage
from parley_llm.providers.registry import REGISTRY, get_provider
from parley_llm.settings import DEFAULT_ANTHROPIC_MODEL, DEFAULT_GROQ_MODEL, DEFAULT_OPENAI_MODEL

if TYPE_CHECKING:
    from tests.conftest import Emulate

ASK = [ChatMessage("user", "hello")]
ENV = (
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "GROQ_API_KEY",
    "ANTHROPIC_BASE_URL",
    "OPENAI_BASE_URL",
    "GROQ_BASE_URL",
    "ANTHROPIC_MODEL",
    "OPENAI_LLM_MODEL",
    "GROQ_LLM_MODEL",
    "OPENAI_COMPATIBLE_BASE_URL",
    "OPENAI_COMPATIBLE_MODEL",
    "OPENAI_COMPATIBLE_API_KEY",
)


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> None:
    """No provider configured, and none built yet (the registry keeps what it built)."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(REGISTRY, "_built", {})


@pytest.mark.parametrize(
    ("name", "variable"),
    [
        (LlmName.ANTHROPIC, "ANTHROPIC_API_KEY"),
        (LlmName.OPENAI, "OPENAI_API_KEY"),
        (LlmName.GROQ, "GROQ_API_KEY"),
    ],
)
def test_without_a_key_the_provider_is_unavailable_and_says_why(
    name: LlmName, variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    status = REGISTRY.status(name)
    assert (status.available, status.reason) == (False, f"no API key: set {variable}")

    monkeypatch.setenv(variable, "   ")  # blank is not a key
    with pytest.raises(ProviderUnavailableError, match=f"no API key: set {variable}"):
        get_provider(name)

    monkeypatch.setenv(variable, "sk-something")
    assert REGISTRY.status(name).available
    assert get_provider(name).name == name.value


@pytest.mark.parametrize(
    ("name", "default"),
    [
        (LlmName.ANTHROPIC, DEFAULT_ANTHROPIC_MODEL),
        (LlmName.OPENAI, DEFAULT_OPENAI_MODEL),
        (LlmName.GROQ, DEFAULT_GROQ_MODEL),
    ],
)
async def test_built_from_the_environment_and_pointed_at_the_base_url(
    name: LlmName, default: str, emulate: Emulate, monkeypatch: pytest.MonkeyPatch
) -> None:
    vendor = name.value.upper()
    async with emulate(name.value) as served:
        monkeypatch.setenv(f"{vendor}_API_KEY", served.key)
        suffix = "/v1" if name is LlmName.OPENAI else ""  # OpenAI's variable includes /v1
        monkeypatch.setenv(f"{vendor}_BASE_URL", served.url + suffix)
        provider = get_provider(name)
        usage = LlmUsage()
        try:
            text = "".join([d async for d in provider.stream(ASK, 20, usage=usage)])
        finally:
            await provider.aclose()  # type: ignore[attr-defined]

    assert text == "You said: hello"
    assert served.state.last().body["model"] == default == usage.model


async def test_the_default_model_comes_from_the_environment(
    emulate: Emulate, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with emulate("anthropic") as served:
        monkeypatch.setenv("ANTHROPIC_API_KEY", served.key)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", served.url)
        monkeypatch.setenv("ANTHROPIC_MODEL", "claude-from-env")
        provider = get_provider(LlmName.ANTHROPIC)
        try:
            assert [d async for d in provider.stream(ASK, 20)]
        finally:
            await provider.aclose()  # type: ignore[attr-defined]

    assert served.state.last().body["model"] == "claude-from-env"


async def test_openai_compatible_needs_a_server_and_a_model_but_no_key(
    emulate: Emulate, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = LlmName.OPENAI_COMPATIBLE
    assert REGISTRY.status(name).reason == (
        "no server: set OPENAI_COMPATIBLE_BASE_URL (with /v1, e.g. http://127.0.0.1:11434/v1)"
    )
    async with emulate("openai_compatible") as served:
        served.state.api_key = ""
        monkeypatch.setenv("OPENAI_COMPATIBLE_BASE_URL", f"{served.url}/v1")
        assert REGISTRY.status(name).reason == (
            "no model: set OPENAI_COMPATIBLE_MODEL to a model the server serves"
        )
        monkeypatch.setenv("OPENAI_COMPATIBLE_MODEL", "qwen2.5:0.5b")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-belongs-to-openai")
        assert REGISTRY.status(name).available
        provider = get_provider(name)
        try:
            text = "".join([d async for d in provider.stream(ASK, 20)])
        finally:
            await provider.aclose()  # type: ignore[attr-defined]

    assert text == "You said: hello"
    sent = served.state.last()
    assert sent.body["model"] == "qwen2.5:0.5b"
    assert "sk-belongs-to-openai" not in str(sent.headers)
