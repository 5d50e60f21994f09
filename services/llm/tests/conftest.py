"""The cloud LLM adapters against their provider emulators: one case per adapter, each
emulator served on a free port, each adapter built through its official SDK pointed there."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol

import pytest
from starlette.routing import BaseRoute

from parley_emulators import anthropic_messages, openai_chat
from parley_emulators.base import EmulatorState, running, starlette_app
from parley_llm.providers.anthropic_messages import AnthropicProvider
from parley_llm.providers.base import LlmProvider
from parley_llm.providers.groq_chat import GroqChatProvider
from parley_llm.providers.openai_chat import OPENAI, OPENAI_COMPATIBLE, OpenAIChatProvider

KEY = "sk-test-emulator-key-0123456789"
DEFAULT_MODEL = "default-test-model"


class CloudProvider(LlmProvider, Protocol):
    """A cloud adapter: an LLM provider that also owns an SDK client to close."""

    async def aclose(self) -> None: ...


Builder = Callable[[str, str, int, float], CloudProvider]


def _anthropic(url: str, key: str, retries: int, timeout_s: float) -> CloudProvider:
    return AnthropicProvider(
        api_key=key, base_url=url, model=DEFAULT_MODEL, timeout_s=timeout_s, max_retries=retries
    )


def _openai(url: str, key: str, retries: int, timeout_s: float) -> CloudProvider:
    return OpenAIChatProvider(
        name="openai",
        vendor=OPENAI,
        api_key=key,
        base_url=f"{url}/v1",
        model=DEFAULT_MODEL,
        timeout_s=timeout_s,
        max_retries=retries,
    )


def _compatible(url: str, key: str, retries: int, timeout_s: float) -> CloudProvider:
    return OpenAIChatProvider(
        name="openai_compatible",
        vendor=OPENAI_COMPATIBLE,
        api_key=key,
        base_url=f"{url}/v1",
        model=DEFAULT_MODEL,
        timeout_s=timeout_s,
        max_retries=retries,
        compatible_server=True,
    )


def _groq(url: str, key: str, retries: int, timeout_s: float) -> CloudProvider:
    return GroqChatProvider(
        api_key=key, base_url=url, model=DEFAULT_MODEL, timeout_s=timeout_s, max_retries=retries
    )


@dataclass(frozen=True)
class Cloud:
    """One adapter and the emulator of its protocol."""

    name: str
    label: str  # how its errors name it
    key_env: str
    path: str  # the emulator path the SDK posts to
    routes: Callable[..., list[BaseRoute]]
    build: Builder
    overloaded_status: int  # the status the provider answers when overloaded


CLOUDS = (
    Cloud(
        "anthropic",
        "Anthropic",
        "ANTHROPIC_API_KEY",
        anthropic_messages.MESSAGES_PATH,
        anthropic_messages.routes,
        _anthropic,
        529,
    ),
    Cloud(
        "openai",
        "OpenAI",
        "OPENAI_API_KEY",
        openai_chat.OPENAI_PATH,
        openai_chat.routes,
        _openai,
        503,
    ),
    Cloud(
        "openai_compatible",
        "OpenAI-compatible",
        "OPENAI_COMPATIBLE_API_KEY",
        openai_chat.OPENAI_PATH,
        openai_chat.routes,
        _compatible,
        503,
    ),
    Cloud("groq", "Groq", "GROQ_API_KEY", openai_chat.GROQ_PATH, openai_chat.routes, _groq, 503),
)


@dataclass
class Served:
    """A running emulator and a way to build adapters that talk to it (closed afterwards)."""

    cloud: Cloud
    state: EmulatorState
    url: str
    built: list[CloudProvider] = field(default_factory=list)
    key: str = KEY
    default_model: str = DEFAULT_MODEL

    def provider(
        self, *, key: str = KEY, max_retries: int = 0, timeout_s: float = 5.0
    ) -> CloudProvider:
        """The adapter, pointed at the emulator (no retries unless asked)."""
        provider = self.cloud.build(self.url, key, max_retries, timeout_s)
        self.built.append(provider)
        return provider


@pytest.fixture(params=CLOUDS, ids=[c.name for c in CLOUDS])
def cloud(request: pytest.FixtureRequest) -> Cloud:
    """Each cloud adapter in turn."""
    case: Cloud = request.param
    return case


@contextlib.asynccontextmanager
async def _serve(name: str, reply: str | None = None) -> AsyncIterator[Served]:
    cloud = next(c for c in CLOUDS if c.name == name)
    state = EmulatorState(api_key=KEY)
    async with running(starlette_app(cloud.routes(state, reply=reply))) as url:
        served = Served(cloud, state, url)
        try:
            yield served
        finally:
            for provider in served.built:
                await provider.aclose()


Emulate = Callable[..., contextlib.AbstractAsyncContextManager[Served]]


@pytest.fixture
def emulate() -> Emulate:
    """``emulate(name, reply=None)``: run adapter ``name``'s emulator for an ``async with``
    block, answering ``reply`` (else an echo of the last user message)."""
    return _serve


@pytest.fixture
async def served(cloud: Cloud) -> AsyncIterator[Served]:
    """``cloud``'s emulator, echoing the last user message."""
    async with _serve(cloud.name) as running_emulator:
        yield running_emulator
