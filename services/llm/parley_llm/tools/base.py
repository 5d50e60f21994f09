"""What every tool is: a spec the model sees, a timeout, and an async ``run`` that returns
the text given back to the model (and, for a few built-ins, an effect on the call)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from parley_common.contracts.bus import ActionKind
from parley_llm.providers.base import ToolSpec

__all__ = ["CallStatus", "Tool", "ToolCallRecord", "ToolEffect", "ToolOutcome"]

CallStatus = Literal["ok", "error", "timeout", "refused"]


# What a built-in asks of the call beyond its answer (the gateway carries it out).
ToolEffect = ActionKind


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """A tool's answer: ``content`` goes back to the model as the call's result."""

    content: str
    effect: ToolEffect | None = None


class Tool(Protocol):
    """One callable tool of a session."""

    @property
    def spec(self) -> ToolSpec:
        """What the model is told about the tool."""
        ...

    @property
    def timeout_s(self) -> float:
        """How long a call may take before the model gets a timeout error instead."""
        ...

    async def run(self, arguments: Mapping[str, Any]) -> ToolOutcome:
        """Do the call with validated ``arguments``. A failure raises a ``ParleyError``
        (its ``message`` is what the model is told); cancellation stops it at once."""
        ...


@dataclass(frozen=True, slots=True)
class ToolCallRecord:
    """One call as the transcript keeps it."""

    turn_id: int
    call_id: str
    name: str
    arguments: Mapping[str, Any] | None  # None: the model's arguments were not JSON
    status: CallStatus
    result: str
    duration_ms: float
    effect: ToolEffect | None = None
