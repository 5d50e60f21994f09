"""What the chat-model emulators answer: deterministic text derived from the request, split
into the deltas a streaming model sends, and word counts standing in for tokens; and, when a
``ToolPlan`` is set and the request offers its tool, a tool call first, then an answer made
of the result the client sent back."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Answer",
    "PlannedCall",
    "ToolPlan",
    "ToolPlans",
    "answer",
    "content_text",
    "count_tokens",
    "offered_plan",
]

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


@dataclass(frozen=True)
class ToolPlan:
    """What the emulated model does when a request offers the tool ``name``: say
    ``preamble`` (if any), call the tool with ``arguments``; once the request carries the
    tool's result, answer ``answer_prefix`` followed by the result's text."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    preamble: str = ""
    answer_prefix: str = "The tool says: "

    def offered(self, tool_names: Sequence[str]) -> bool:
        """Whether the request offers this plan's tool."""
        return self.name in tool_names

    def call(self, call_id: str) -> PlannedCall:
        """The call to stream, its arguments as the JSON text a model writes."""
        return PlannedCall(call_id, self.name, json.dumps(self.arguments))

    def reply_with(self, result: str) -> str:
        """The answer once ``result`` came back."""
        return self.answer_prefix + result


@dataclass(frozen=True)
class PlannedCall:
    """A tool call the emulator streams."""

    id: str
    name: str
    arguments: str

    def argument_pieces(self, size: int = 8) -> list[str]:
        """The arguments in the small pieces a model streams them in."""
        return [self.arguments[i : i + size] for i in range(0, len(self.arguments), size)]


# One plan, or several (the first whose tool a request offers is followed), or none.
ToolPlans = ToolPlan | Sequence[ToolPlan] | None


def offered_plan(plans: ToolPlans, tool_names: Sequence[str]) -> ToolPlan | None:
    """The plan to follow for a request offering ``tool_names``, if any."""
    if plans is None:
        return None
    candidates = [plans] if isinstance(plans, ToolPlan) else list(plans)
    return next((p for p in candidates if p.offered(tool_names)), None)
