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


class LlmProvider(Protocol):
    """A streaming chat model, registered by name."""

    name: str

    def stream(self, messages: Sequence[ChatMessage], max_tokens: int) -> AsyncGenerator[str, None]:
        """Yield the answer as text deltas. Closing the iterator (``aclose``, or cancelling
        the task iterating it) stops generation promptly and frees the model."""
        ...
