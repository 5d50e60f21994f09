"""The dialogue-model capability: what every LLM adapter implements."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of the conversation sent to the model."""

    role: Literal["system", "user", "assistant"]
    content: str


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
