"""What the chat-model emulators answer: deterministic text derived from the request, split
into the deltas a streaming model sends, and word counts standing in for tokens."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Answer", "answer", "content_text", "count_tokens"]

_WORD = re.compile(r"\s*\S+")
ECHO_PREFIX = "You said: "


def content_text(content: Any) -> str:
    """The text of a message's ``content``: a string, or the text of its text blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def count_tokens(text: str) -> int:
    """The emulators' token count: one per word."""
    return len(_WORD.findall(text))


@dataclass(frozen=True)
class Answer:
    """The deltas to stream and whether the token budget cut them short."""

    deltas: list[str]
    truncated: bool


def answer(messages: Sequence[Any], reply: str | None, max_tokens: int | None) -> Answer:
    """``reply`` when configured, else an echo of the last user message, one word (with its
    leading space) per delta, at most ``max_tokens`` of them."""
    if reply is None:
        said = next(
            (
                content_text(m.get("content"))
                for m in reversed(messages)
                if isinstance(m, dict) and m.get("role") == "user"
            ),
            "",
        )
        reply = ECHO_PREFIX + said
    words = _WORD.findall(reply)
    limit = len(words) if max_tokens is None else max(0, max_tokens)
    return Answer(deltas=words[:limit], truncated=len(words) > limit)
