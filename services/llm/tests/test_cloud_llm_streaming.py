"""Every cloud LLM adapter, through its official SDK, against its provider's emulator:
streaming, per-session model, cancellation, and each failure translated into Parley's
error tree."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

import pytest

from parley_common.errors import (
    BadInputError,
    ParleyError,
    ParleyTimeoutError,
    ProviderAuthError,
    ProviderFailedError,
    ProviderRateLimitedError,
)
from parley_emulators.base import Fault
from parley_llm.providers.base import ChatMessage, LlmUsage

if TYPE_CHECKING:
    from tests.conftest import Served

ASK = [
    ChatMessage("system", "You are a test."),
    ChatMessage("user", "hello there"),
]
LONG = [ChatMessage("user", " ".join(f"word{i}" for i in range(200)))]


async def collect(
    served: Served, messages: list[ChatMessage] = ASK, **kwargs: Any
) -> tuple[str, LlmUsage]:
    """The whole answer of a fresh adapter and the usage it reported."""
    provider = served.provider(**kwargs)
    usage = LlmUsage()
    parts = [d async for d in provider.stream(messages, 100, usage=usage)]
    return "".join(parts), usage


def assert_clean(error: ParleyError, served: Served) -> None:
    """The message names the provider and never carries the key or the vendor's words."""
    assert served.cloud.label in error.message
    assert served.key not in error.message
    assert error.provider == served.cloud.name


async def test_streams_the_answer_and_reports_usage(served: Served) -> None:
    text, usage = await collect(served)

    assert text == "You said: hello there"
    sent = served.state.last(served.cloud.path).body
    assert sent["model"] == served.default_model
    assert sent["stream"] is True
    assert usage.model == served.default_model
    assert usage.output_tokens == 4  # one emulated token per word
    assert usage.input_tokens == 6
    assert usage.finish_reason == "stop"


async def test_a_session_model_is_sent_and_reported(served: Served) -> None:
    provider = served.provider()
    usage = LlmUsage()

    text = "".join([d async for d in provider.stream(ASK, 100, model="per-session-x", usage=usage)])

    assert text == "You said: hello there"
    assert served.state.last(served.cloud.path).body["model"] == "per-session-x"
    assert usage.model == "per-session-x"


async def test_max_tokens_cuts_the_answer_and_says_so(served: Served) -> None:
    provider = served.provider()
    usage = LlmUsage()

    deltas = [d async for d in provider.stream(LONG, 3, usage=usage)]

    assert len(deltas) == 3
    assert usage.finish_reason == "length"


async def test_cancelling_closes_the_http_stream_at_once(served: Served) -> None:
    served.state.stream_delay_s = 0.05
    provider = served.provider()
    got: list[str] = []
    two = asyncio.Event()

    async def consume() -> None:
        async for delta in provider.stream(LONG, 500):
            got.append(delta)
            if len(got) == 2:
                two.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(two.wait(), 5)
    task.cancel()
    cancelled_at = time.perf_counter()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await asyncio.wait_for(served.state.closed.wait(), 1)

    closed_at = served.state.last(served.cloud.path).closed_at
    assert closed_at is not None
    assert closed_at - cancelled_at < 0.1
    assert len(got) < 10


async def test_closing_the_generator_closes_the_http_stream(served: Served) -> None:
    served.state.stream_delay_s = 0.05
    stream = served.provider().stream(LONG, 500)
    assert await anext(stream)

    closing_at = time.perf_counter()
    await stream.aclose()
    await asyncio.wait_for(served.state.closed.wait(), 1)

    closed_at = served.state.last(served.cloud.path).closed_at
    assert closed_at is not None
    assert closed_at - closing_at < 0.1


async def test_a_refused_key_is_an_auth_error_and_not_retried(served: Served) -> None:
    with pytest.raises(ProviderAuthError) as caught:
        await collect(served, key="sk-wrong-key-42", max_retries=2)

    assert_clean(caught.value, served)
    assert "sk-wrong-key-42" not in caught.value.message
    assert served.cloud.key_env in caught.value.message
    assert len(served.state.requests) == 1


async def test_rate_limited_then_answered_after_retry_after(served: Served) -> None:
    served.state.fail_next(Fault(status=429, headers={"retry-after": "0.4"}))

    text, _ = await collect(served, max_retries=1)

    assert text == "You said: hello there"
    first, second = served.state.requests
    assert second.opened_at - first.opened_at >= 0.4


async def test_rate_limited_without_retry_carries_the_hint(served: Served) -> None:
    served.state.fail_next(
        Fault(status=429, headers={"retry-after": "7", "x-should-retry": "false"})
    )

    with pytest.raises(ProviderRateLimitedError) as caught:
        await collect(served, max_retries=2)

    assert caught.value.retry_after_s == 7
    assert "retry in 7 s" in caught.value.message
    assert_clean(caught.value, served)
    assert len(served.state.requests) == 1


async def test_a_server_error_is_retried_before_the_first_token(served: Served) -> None:
    served.state.fail_next(Fault(status=500, headers={"retry-after": "0"}))

    text, _ = await collect(served, max_retries=1)

    assert text == "You said: hello there"
    assert len(served.state.requests) == 2


@pytest.mark.parametrize("overloaded", [False, True], ids=["500", "overloaded"])
async def test_server_errors_are_provider_failures(served: Served, overloaded: bool) -> None:
    status = served.cloud.overloaded_status if overloaded else 500
    served.state.fail_next(Fault(status=status))

    with pytest.raises(ProviderFailedError) as caught:
        await collect(served)

    assert type(caught.value) is ProviderFailedError
    assert f"HTTP {status}" in caught.value.message
    assert_clean(caught.value, served)


async def test_an_unknown_model_is_bad_input(served: Served) -> None:
    served.state.fail_next(Fault(status=404))

    with pytest.raises(BadInputError) as caught:
        await collect(served)

    assert served.default_model in caught.value.message


@pytest.mark.parametrize("kind", ["malformed", "drop", "stream_error"])
async def test_a_stream_broken_after_tokens_fails_and_is_not_replayed(
    served: Served, kind: str
) -> None:
    served.state.fail_next(Fault(kind=kind))
    provider = served.provider(max_retries=2)
    got: list[str] = []

    async def consume() -> None:
        async for delta in provider.stream(ASK, 100):
            got.append(delta)

    with pytest.raises(ProviderFailedError) as caught:
        await consume()

    assert got == ["You"]
    assert_clean(caught.value, served)
    expected = {"malformed": "malformed", "drop": "lost", "stream_error": "error event"}[kind]
    assert expected in caught.value.message
    assert len(served.state.requests) == 1


async def test_a_silent_provider_times_out(served: Served) -> None:
    served.state.stream_delay_s = 1.0

    with pytest.raises(ParleyTimeoutError) as caught:
        await collect(served, timeout_s=0.2)

    assert "0.2 s" in caught.value.message
    assert_clean(caught.value, served)


async def test_an_unreachable_provider_is_a_lost_connection(served: Served) -> None:
    provider = served.cloud.build("http://127.0.0.1:9", served.key, 0, 2.0)
    served.built.append(provider)

    with pytest.raises(ProviderFailedError) as caught:
        async for _ in provider.stream(ASK, 10):
            pass

    assert "connection" in caught.value.message
