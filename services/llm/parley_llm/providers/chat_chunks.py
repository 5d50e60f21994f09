"""Reading OpenAI-style chat-completion chunks, whichever SDK parsed them (OpenAI's for
OpenAI and compatible servers, Groq's for Groq): the shapes are the same, the classes not."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from parley_llm.providers.base import ChatMessage, LlmUsage


class _PromptDetails(Protocol):
    @property
    def cached_tokens(self) -> int | None: ...


class TokenCounts(Protocol):
    """A chunk's ``usage`` (OpenAI: the last chunk; Groq: also ``x_groq.usage``)."""

    @property
    def prompt_tokens(self) -> int: ...

    @property
    def completion_tokens(self) -> int: ...

    @property
    def prompt_tokens_details(self) -> _PromptDetails | None: ...


class _Delta(Protocol):
    @property
    def content(self) -> str | None: ...


class _Choice(Protocol):
    @property
    def delta(self) -> _Delta: ...

    @property
    def finish_reason(self) -> str | None: ...


class ChatChunk(Protocol):
    """One ``chat.completion.chunk``."""

    @property
    def model(self) -> str: ...

    @property
    def choices(self) -> Sequence[_Choice]: ...

    @property
    def usage(self) -> TokenCounts | None: ...


def wire_messages(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    """The conversation as the chat-completions ``messages`` array."""
    return [{"role": m.role, "content": m.content} for m in messages]


def record_counts(counts: TokenCounts | None, usage: LlmUsage | None) -> None:
    """Copy the token counts of a usage object into ``usage`` (prompt tokens include the
    cached ones, as ``LlmUsage`` counts them)."""
    if counts is None or usage is None:
        return
    usage.input_tokens = counts.prompt_tokens
    usage.output_tokens = counts.completion_tokens
    details = counts.prompt_tokens_details
    if details is not None and details.cached_tokens is not None:
        usage.cached_input_tokens = details.cached_tokens


def chunk_text(chunk: ChatChunk, usage: LlmUsage | None) -> str:
    """The text a chunk adds to the answer ("" for role, finish and usage chunks), noting the
    model, the finish reason and the token counts in ``usage`` as they pass."""
    if usage is not None:
        usage.model = chunk.model or usage.model
        record_counts(chunk.usage, usage)
    if not chunk.choices:
        return ""
    choice = chunk.choices[0]
    if usage is not None and choice.finish_reason is not None:
        usage.finish_reason = choice.finish_reason
    return choice.delta.content or ""
