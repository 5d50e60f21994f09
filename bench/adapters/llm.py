"""The LLM adapters' turns: one short conversation streamed, timed to the first token and then
read to the end, as the dialogue does. One adapter (and SDK client) serves every turn, as in
the LLM worker, so its connection pool is what a running service has."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any, Protocol

from starlette.routing import BaseRoute

from bench.adapters.timing import (
    Case,
    Closable,
    Served,
    Timings,
    adapter_on,
    emulator_s,
    first_then_rest,
)
from parley_emulators import anthropic_messages, openai_chat
from parley_emulators.base import EmulatorState, Moment, starlette_app
from parley_llm.providers.anthropic_messages import AnthropicProvider
from parley_llm.providers.base import ChatMessage, LlmProvider
from parley_llm.providers.groq_chat import GroqChatProvider
from parley_llm.providers.openai_chat import OPENAI, OPENAI_COMPATIBLE, OpenAIChatProvider

__all__ = ["CASES", "MESSAGES"]

KEY = "bench-llm-key"
MESSAGES = [
    ChatMessage("system", "You are Parley, a voice assistant. Answer briefly."),
    ChatMessage("user", "What is the weather like in Paris today?"),
]
MAX_TOKENS = 64
_TRANSPORT: dict[str, Any] = {"model": "bench-model", "timeout_s": 10.0, "max_retries": 0}


class _CloudLlm(LlmProvider, Closable, Protocol):
    """An LLM adapter that owns an SDK client."""


async def _turn(provider: LlmProvider, state: EmulatorState, path: str, timings: Timings) -> None:
    started = time.perf_counter()
    first_at = await first_then_rest(provider.stream(MESSAGES, MAX_TOKENS))
    own_s = emulator_s(state.last(path), None, Moment.FIRST_BYTE)
    timings.add("first token", first_at - started, own_s)


def _case(
    adapter: str,
    routes: Callable[[EmulatorState], list[BaseRoute]],
    build: Callable[[str], _CloudLlm],
    path: str,
) -> Case:
    def serve() -> contextlib.AbstractAsyncContextManager[Served]:
        state = EmulatorState(api_key=KEY)
        app = starlette_app(routes(state))
        return adapter_on(app, build, lambda llm, t: _turn(llm, state, path, t))

    return Case("llm", adapter, serve)


CASES = [
    _case(
        "anthropic",
        anthropic_messages.routes,
        lambda url: AnthropicProvider(api_key=KEY, base_url=url, **_TRANSPORT),
        anthropic_messages.MESSAGES_PATH,
    ),
    _case(
        "openai",
        openai_chat.routes,
        lambda url: OpenAIChatProvider(
            name="openai", vendor=OPENAI, api_key=KEY, base_url=f"{url}/v1", **_TRANSPORT
        ),
        openai_chat.OPENAI_PATH,
    ),
    _case(
        "openai_compatible",
        openai_chat.routes,
        lambda url: OpenAIChatProvider(
            name="openai_compatible",
            vendor=OPENAI_COMPATIBLE,
            api_key=KEY,
            base_url=f"{url}/v1",
            compatible_server=True,
            **_TRANSPORT,
        ),
        openai_chat.OPENAI_PATH,
    ),
    _case(
        "groq",
        openai_chat.routes,
        lambda url: GroqChatProvider(api_key=KEY, base_url=url, **_TRANSPORT),
        openai_chat.GROQ_PATH,
    ),
]
