"""The tools Parley provides itself: the current date and time in the user's zone, ending
the call, switching to text, and searching the chatbot's knowledge (through a seam the
knowledge base plugs into; without one the model is told it is unavailable)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from parley_common.contracts.tools import Builtin
from parley_common.errors import BadInputError, ServiceUnavailableError
from parley_llm.providers.base import ToolSpec
from parley_llm.tools.base import Tool, ToolEffect, ToolOutcome

__all__ = ["DEFAULT_TIMEZONE_ENV", "KnowledgeSearch", "builtin_tool"]

DEFAULT_TIMEZONE_ENV = "PARLEY_DEFAULT_TIMEZONE"
BUILTIN_TIMEOUT_S = 5.0
KNOWLEDGE_RESULTS = 4


class KnowledgeSearch(Protocol):
    """The knowledge base's side of ``knowledge_search``: the passages of the session's
    chatbot that best answer ``query``, best first."""

    async def __call__(self, query: str, k: int) -> Sequence[str]: ...


def _object(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required)}


_CURRENT_TIME = ToolSpec(
    Builtin.CURRENT_TIME.value,
    "The current date and time. Without a timezone, the user's own.",
    _object({"timezone": {"type": "string", "description": "An IANA zone, e.g. Europe/Paris"}}),
)

_KNOWLEDGE = ToolSpec(
    Builtin.KNOWLEDGE_SEARCH.value,
    "Search this assistant's documents for passages that answer a question.",
    _object({"query": {"type": "string", "minLength": 1}}, ("query",)),
)


@dataclass(frozen=True, slots=True)
class _CurrentTime:
    zone: str | None
    spec: ToolSpec = _CURRENT_TIME
    timeout_s: float = BUILTIN_TIMEOUT_S

    async def run(self, arguments: Mapping[str, Any]) -> ToolOutcome:
        name = arguments.get("timezone") or self.zone or os.environ.get(DEFAULT_TIMEZONE_ENV)
        try:
            zone = ZoneInfo(name) if name else UTC
        except (ZoneInfoNotFoundError, ValueError):
            raise BadInputError(f"unknown time zone {name!r}") from None
        now = datetime.now(zone)
        return ToolOutcome(
            json.dumps(
                {
                    "iso": now.isoformat(timespec="seconds"),
                    "timezone": str(zone),
                    "weekday": now.strftime("%A"),
                    "date": now.strftime("%d %B %Y").lstrip("0"),
                    "time": now.strftime("%H:%M"),
                }
            )
        )


@dataclass(frozen=True, slots=True)
class _Effect:
    """A built-in whose whole job is an effect on the call, acknowledged to the model."""

    spec: ToolSpec
    effect: ToolEffect
    said: str
    timeout_s: float = BUILTIN_TIMEOUT_S

    async def run(self, arguments: Mapping[str, Any]) -> ToolOutcome:
        return ToolOutcome(json.dumps({"ok": True, "note": self.said}), self.effect)


@dataclass(frozen=True, slots=True)
class _KnowledgeSearch:
    search: KnowledgeSearch | None
    spec: ToolSpec = _KNOWLEDGE
    timeout_s: float = BUILTIN_TIMEOUT_S

    async def run(self, arguments: Mapping[str, Any]) -> ToolOutcome:
        if self.search is None:
            raise ServiceUnavailableError("knowledge search is not available for this assistant")
        passages = await self.search(str(arguments["query"]), KNOWLEDGE_RESULTS)
        return ToolOutcome(json.dumps({"passages": list(passages)}))


_END_CALL = ToolSpec(
    Builtin.END_CALL.value,
    "End the call, after your goodbye, when the user wants to hang up.",
    _object({}),
)
_SWITCH_TO_TEXT = ToolSpec(
    Builtin.SWITCH_TO_TEXT.value,
    "Continue the conversation in text instead of voice, when the user asks to.",
    _object({}),
)


def builtin_tool(name: Builtin, *, timezone: str | None, knowledge: KnowledgeSearch | None) -> Tool:
    """The built-in ``name``; ``timezone`` is the user's zone for ``current_time``,
    ``knowledge`` the chatbot's search for ``knowledge_search``."""
    match name:
        case Builtin.CURRENT_TIME:
            return _CurrentTime(timezone)
        case Builtin.END_CALL:
            return _Effect(_END_CALL, "end_call", "the call ends after your answer")
        case Builtin.SWITCH_TO_TEXT:
            return _Effect(_SWITCH_TO_TEXT, "switch_to_text", "the user continues in text")
        case Builtin.KNOWLEDGE_SEARCH:
            return _KnowledgeSearch(knowledge)
