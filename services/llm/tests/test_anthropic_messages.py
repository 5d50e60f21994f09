"""The Anthropic adapter's own behaviour: the request it builds (system prompt, merged turns,
cache breakpoints, headers) and the prompt cache it earns across turns."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from parley_common.errors import ProviderFailedError
from parley_emulators.base import Fault
from parley_llm.providers.anthropic_messages import request_parts
from parley_llm.providers.base import ChatMessage, LlmUsage

if TYPE_CHECKING:
    from tests.conftest import Emulate

SYSTEM = "You are Parley, a voice assistant. Answer briefly."
EPHEMERAL = {"type": "ephemeral"}


def test_request_parts_put_breakpoints_on_the_system_prompt_and_the_last_turn() -> None:
    system, turns = request_parts(
        [
            ChatMessage("system", SYSTEM),
            ChatMessage("assistant", "Hello! How can I help?"),  # before any user turn
            ChatMessage("user", "What time"),
            ChatMessage("user", "is it?"),
            ChatMessage("assistant", "  "),
            ChatMessage("assistant", "Noon."),
            ChatMessage("user", "Thanks"),
        ]
    )

    assert system == [{"type": "text", "text": SYSTEM, "cache_control": EPHEMERAL}]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[0]["content"] == [
        {"type": "text", "text": "What time"},
        {"type": "text", "text": "is it?"},
    ]
    assert turns[1]["content"] == [{"type": "text", "text": "Noon."}]
    assert turns[2]["content"] == [{"type": "text", "text": "Thanks", "cache_control": EPHEMERAL}]


def test_request_parts_without_a_system_prompt() -> None:
    system, turns = request_parts([ChatMessage("user", "hi")])

    assert system == []
    assert turns == [
        {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": EPHEMERAL}]}
    ]


async def test_the_request_on_the_wire(emulate: Emulate) -> None:
    async with emulate("anthropic") as served:
        provider = served.provider()
        messages = [ChatMessage("system", SYSTEM), ChatMessage("user", "hello")]

        assert "".join([d async for d in provider.stream(messages, 42)]) == "You said: hello"

        sent = served.state.last("/v1/messages")
        assert sent.body["max_tokens"] == 42
        assert sent.body["system"] == [{"type": "text", "text": SYSTEM, "cache_control": EPHEMERAL}]
        assert sent.body["messages"][-1]["content"][-1]["cache_control"] == EPHEMERAL
        assert sent.headers["anthropic-version"]
        auth = (sent.headers.get("x-api-key"), sent.headers.get("authorization"))
        assert served.key in auth or f"Bearer {served.key}" in auth


async def test_the_second_turn_reads_the_first_from_the_prompt_cache(emulate: Emulate) -> None:
    async with emulate("anthropic", reply="Noon.") as served:
        provider = served.provider()
        history = [ChatMessage("system", SYSTEM), ChatMessage("user", "What time is it?")]
        first = LlmUsage()
        answer = "".join([d async for d in provider.stream(history, 50, usage=first)])
        history += [ChatMessage("assistant", answer), ChatMessage("user", "Thanks a lot")]
        second = LlmUsage()
        assert [d async for d in provider.stream(history, 50, usage=second)] == ["Noon."]

    # Turn one: system (8 words) + question (4) written to the cache, nothing read.
    assert (first.input_tokens, first.cache_write_tokens, first.cached_input_tokens) == (12, 12, 0)
    # Turn two reads that prefix back and writes only what is new: "Noon." + "Thanks a lot".
    assert (second.input_tokens, second.cache_write_tokens, second.cached_input_tokens) == (
        16,
        4,
        12,
    )
    assert second.output_tokens == 1
    assert second.model == served.default_model


async def test_an_overloaded_error_event_mid_stream(emulate: Emulate) -> None:
    async with emulate("anthropic") as served:
        served.state.fail_next(Fault(kind="stream_error"))
        provider = served.provider()

        with pytest.raises(ProviderFailedError) as caught:
            async for _ in provider.stream([ChatMessage("user", "hello there")], 50):
                pass

    assert "Anthropic is overloaded" in caught.value.message
    assert caught.value.retryable
