"""The dialogue-model capability: what every LLM adapter implements."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A function the model may call: what the model is told about it, nothing more (no URL,
    no secret ever goes into a prompt)."""

    name: str
    description: str
    parameters: Mapping[str, Any]  # a JSON schema of type "object"


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The model asked for ``name`` with ``arguments`` (the JSON text it wrote, unparsed:
    the tool runner validates it)."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of the conversation sent to the model.

    A tool round adds an ``assistant`` message carrying ``tool_calls`` (and whatever text
    the model said before them), then one ``tool`` message per call whose ``content`` is the
    result, answering ``tool_call_id``; ``is_error`` marks a failed call.
    """

    role: Literal["system", "user", "assistant", "tool"]
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    is_error: bool = False


@dataclass(slots=True)
class LlmUsage:
    """What one generation cost, filled in by the adapter as the stream reports it (so a
    cancelled answer keeps what was known when it stopped).

    ``input_tokens`` counts the whole prompt, cached parts included; ``cached_input_tokens``
    is the part read from the provider's prompt cache (billed at a discount) and
    ``cache_write_tokens`` the part written to it (Anthropic bills that at a premium).
    ``None`` means the provider did not say.
    """

    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int | None = None
    cache_write_tokens: int | None = None
    # "stop" (the model finished), "length" (max_tokens reached), or the provider's own word.
    finish_reason: str | None = None


class LlmProvider(Protocol):
    """A streaming chat model, registered by name."""

    name: str

    def stream(
        self,
        messages: Sequence[ChatMessage],
        max_tokens: int,
        *,
        model: str | None = None,
        usage: LlmUsage | None = None,
    ) -> AsyncGenerator[str, None]:
        """Yield the answer as text deltas. Closing the iterator (``aclose``, or cancelling
        the task iterating it) stops generation promptly and frees the model.

        ``model`` picks one of the provider's models for this call (None = its configured
        default); ``usage``, when given, is filled in with the model that answered and the
        tokens it counted.
        """
        ...


@runtime_checkable
class ToolCallingProvider(LlmProvider, Protocol):
    """An adapter whose model can call functions (Anthropic, OpenAI and compatible, Groq).

    Providers without it (the local model, the scripted double) are simply never offered
    tools: ``stream`` stays the whole contract for them.
    """

    def stream_tools(
        self,
        messages: Sequence[ChatMessage],
        max_tokens: int,
        tools: Sequence[ToolSpec],
        *,
        model: str | None = None,
        usage: LlmUsage | None = None,
    ) -> AsyncGenerator[str | ToolCall, None]:
        """Like ``stream``, offering ``tools``: text deltas as they come, and each complete
        ``ToolCall`` once its arguments have fully streamed. A stream that yielded calls
        ends with ``usage.finish_reason == "tool_calls"``; the caller runs them and streams
        again with the results appended."""
        ...


async def text_only(items: AsyncGenerator[str | ToolCall, None]) -> AsyncGenerator[str, None]:
    """The text deltas of a ``stream_tools`` stream offered no tools (what ``stream`` is for
    an adapter that can call tools); closing it closes ``items``."""
    async with contextlib.aclosing(items):
        async for item in items:
            if isinstance(item, str):
                yield item


class StreamsThroughTools(ABC):
    """For an adapter that can call tools: ``stream`` is ``stream_tools`` offered none."""

    @abstractmethod
    def stream_tools(
        self,
        messages: Sequence[ChatMessage],
        max_tokens: int,
        tools: Sequence[ToolSpec],
        *,
        model: str | None = None,
        usage: LlmUsage | None = None,
    ) -> AsyncGenerator[str | ToolCall, None]:
        """See ``ToolCallingProvider.stream_tools``."""

    def stream(
        self,
        messages: Sequence[ChatMessage],
        max_tokens: int,
        *,
        model: str | None = None,
        usage: LlmUsage | None = None,
    ) -> AsyncGenerator[str, None]:
        """Yield the answer as text deltas (see ``LlmProvider.stream``)."""
        return text_only(self.stream_tools(messages, max_tokens, (), model=model, usage=usage))
