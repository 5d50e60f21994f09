"""The scripted test double: instant word-by-word replies, recorded runs, cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from parley_llm.providers.base import ChatMessage, LlmProvider
from parley_llm.providers.scripted import DEFAULT_REPLY, REPLY_ENV, ScriptedLlmProvider

ASK = [ChatMessage("user", "hello")]


async def collect(provider: LlmProvider, max_tokens: int = 100) -> list[str]:
    return [delta async for delta in provider.stream(ASK, max_tokens)]


async def test_streams_the_default_reply_word_by_word(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REPLY_ENV, raising=False)
    provider = ScriptedLlmProvider()

    deltas = await collect(provider)

    assert provider.name == "scripted"
    assert "".join(deltas) == DEFAULT_REPLY
    assert len(deltas) == len(DEFAULT_REPLY.split())
    assert deltas[:2] == ["This", " is"]
    run = provider.runs[-1]
    assert (run.deltas, run.finished, run.cancelled) == (len(deltas), True, False)
    assert run.messages == tuple(ASK)


async def test_reply_from_argument_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REPLY_ENV, "From the environment.")
    assert "".join(await collect(ScriptedLlmProvider())) == "From the environment."
    assert "".join(await collect(ScriptedLlmProvider("From the test."))) == "From the test."


async def test_max_tokens_caps_the_words() -> None:
    provider = ScriptedLlmProvider("one two three four five")
    assert await collect(provider, max_tokens=3) == ["one", " two", " three"]
    assert provider.runs[-1].finished


async def test_zero_delay_is_instant_and_does_not_starve_the_loop() -> None:
    provider = ScriptedLlmProvider(" ".join(["word"] * 2000))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    tick_task = asyncio.create_task(ticker())
    started = time.perf_counter()
    deltas = await collect(provider, max_tokens=5000)
    elapsed = time.perf_counter() - started
    tick_task.cancel()

    assert len(deltas) == 2000
    assert elapsed < 1.0
    assert ticks > 100  # the other task ran while the reply streamed


async def test_aclose_marks_the_run_cancelled() -> None:
    provider = ScriptedLlmProvider("a b c d e f")
    stream = provider.stream(ASK, 100)
    assert [await anext(stream), await anext(stream)] == ["a", " b"]

    await stream.aclose()

    run = provider.runs[-1]
    assert (run.deltas, run.finished, run.cancelled) == (2, False, True)


async def test_task_cancel_stops_a_delayed_stream() -> None:
    provider = ScriptedLlmProvider(" ".join(["word"] * 1000), delta_delay_s=0.01)
    received: list[str] = []

    async def consume() -> None:
        async for delta in provider.stream(ASK, 1000):
            received.append(delta)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.1)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

    run = provider.runs[-1]
    assert run.cancelled
    assert not run.finished
    assert 3 <= run.deltas <= 20  # about 10 at 10 ms each, far from all 1000
    assert run.deltas == len(received)
