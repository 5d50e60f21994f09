"""A session's tools and how one call runs: arguments parsed and validated against the
tool's JSON schema, the tool run under its timeout inside a ``tool.call`` span, and every
outcome, failures included, turned into a result the model can read. A call never raises
(but for cancellation, which stops it at once): a broken tool cannot hang or end the turn.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from parley_common.errors import ParleyError
from parley_common.observability import tracing
from parley_llm.providers.base import ToolCall, ToolSpec
from parley_llm.tools.base import CallStatus, Tool, ToolCallRecord, ToolEffect, ToolOutcome

__all__ = ["ToolTurn", "Toolbox"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ToolTurn:
    """The turn a call belongs to: its id and its trace."""

    turn_id: int
    traceparent: str


def _error(message: str) -> str:
    return json.dumps({"error": message})


class Toolbox:
    """The tools one session's model is offered. ``record`` keeps each call (the
    transcript); ``on_effect`` carries out a built-in's effect on the call (ending it, text
    mode), given the turn that asked."""

    def __init__(
        self,
        tools: Sequence[Tool] = (),
        *,
        record: Callable[[ToolCallRecord], None] | None = None,
        on_effect: Callable[[ToolEffect, int], Awaitable[None]] | None = None,
    ) -> None:
        self._tools = {tool.spec.name: tool for tool in tools}
        self._record = record
        self._on_effect = on_effect

    @property
    def specs(self) -> list[ToolSpec]:
        """What the model is told about each tool."""
        return [tool.spec for tool in self._tools.values()]

    async def run_all(self, calls: Sequence[ToolCall], turn: ToolTurn) -> list[ToolCallRecord]:
        """Run ``calls`` concurrently (a model may ask for several at once), in call order."""
        return list(await asyncio.gather(*(self.run(call, turn) for call in calls)))

    async def run(self, call: ToolCall, turn: ToolTurn) -> ToolCallRecord:
        """Run one call; its record says how it went and what the model is given back."""
        started = time.perf_counter()
        arguments: Mapping[str, Any] | None = None
        effect: ToolEffect | None = None
        with tracing.child_span(
            "tool.call",
            turn.traceparent,
            "llm",
            **{
                "gen_ai.tool.name": call.name,
                "gen_ai.tool.call.id": call.id,
                "parley.turn_id": turn.turn_id,
            },
        ) as span:
            status: CallStatus
            try:
                arguments = _arguments(call)
                tool = self._tools.get(call.name)
                if tool is None:
                    raise _Refused(f"there is no tool named {call.name}")
                _validate(tool.spec, arguments)
                async with asyncio.timeout(tool.timeout_s):
                    outcome: ToolOutcome = await tool.run(arguments)
                status, result, effect = "ok", outcome.content, outcome.effect
            except _Refused as exc:
                status, result = "refused", _error(str(exc))
            except TimeoutError:
                status, result = "timeout", _error(f"the tool {call.name} took too long")
            except ParleyError as exc:
                status, result = "error", _error(exc.message)
            except Exception as exc:
                # A tool's own bug: logged by type only (its text may hold a URL or a secret).
                log.warning("tool %s failed: %s", call.name, type(exc).__name__)
                status, result = "error", _error(f"the tool {call.name} failed")
            span.set_attribute("parley.tool.status", status)
        record = ToolCallRecord(
            turn.turn_id,
            call.id,
            call.name,
            arguments,
            status,
            result,
            (time.perf_counter() - started) * 1000,
            effect,
        )
        if self._record is not None:
            self._record(record)
        if effect is not None and self._on_effect is not None:
            try:
                await self._on_effect(effect, turn.turn_id)
            except Exception as exc:
                # The model was told it is done; the call goes on (the bus is back soon).
                log.warning("tool effect %s not delivered: %s", effect, type(exc).__name__)
        return record


class _Refused(Exception):
    """The call was not made: unknown tool or arguments the schema refuses."""


def _arguments(call: ToolCall) -> dict[str, Any]:
    try:
        parsed = json.loads(call.arguments or "{}")
    except ValueError:
        raise _Refused("the arguments are not valid JSON") from None
    if not isinstance(parsed, dict):
        raise _Refused("the arguments must be a JSON object")
    return parsed


def _validate(spec: ToolSpec, arguments: Mapping[str, Any]) -> None:
    try:
        # The draft the schema was checked against when stored (contracts.tools).
        Draft202012Validator(dict(spec.parameters)).validate(dict(arguments))
    except ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "arguments"
        raise _Refused(f"invalid arguments ({where}): {exc.message}") from None
