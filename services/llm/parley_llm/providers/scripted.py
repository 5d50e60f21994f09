"""A zero-latency TEST DOUBLE for the dialogue model (tests and benchmarks only)."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass

from parley_llm.providers.base import ChatMessage, LlmUsage

REPLY_ENV = "PARLEY_SCRIPTED_LLM_REPLY"
DEFAULT_REPLY = "This is a scripted reply from the test model. It stands in for a real answer."

_WORD = re.compile(r"\s*\S+")


@dataclass(slots=True)
class ScriptedRun:
    """What one ``stream`` call received and did."""

    messages: tuple[ChatMessage, ...]
    model: str | None = None  # the model the caller asked for
    deltas: int = 0
    finished: bool = False  # the whole reply (or max_tokens words of it) was streamed
    cancelled: bool = False  # the consumer closed or cancelled it first


class ScriptedLlmProvider:
    """TEST DOUBLE, not a model: streams a fixed reply word by word, instantly.

    Lets tests and benchmarks exercise the pipeline without loading a model. It is never
    selected by default; a session or test has to ask for ``"scripted"`` by name. The reply is
    ``reply``, else ``$PARLEY_SCRIPTED_LLM_REPLY``, else ``DEFAULT_REPLY``; ``delta_delay_s``
    spaces the deltas out so a test can keep a long answer streaming (e.g. to barge in).
    Every call is recorded in ``runs``.
    """

    name = "scripted"

    def __init__(self, reply: str | None = None, *, delta_delay_s: float = 0.0) -> None:
        self.reply = reply if reply is not None else os.environ.get(REPLY_ENV, DEFAULT_REPLY)
        self.delta_delay_s = delta_delay_s
        self.runs: list[ScriptedRun] = []

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        max_tokens: int,
        *,
        model: str | None = None,
        usage: LlmUsage | None = None,
    ) -> AsyncGenerator[str, None]:
        """Yield the reply one word (with its leading space) at a time, at most ``max_tokens``
        words; closing or cancelling marks the run ``cancelled``. ``usage`` counts words as
        tokens and reports ``model`` (default ``"scripted"``)."""
        run = ScriptedRun(messages=tuple(messages), model=model)
        self.runs.append(run)
        if usage is not None:
            usage.model = model or self.name
            usage.input_tokens = sum(len(_WORD.findall(m.content)) for m in messages)
            usage.output_tokens = 0
        words = _WORD.findall(self.reply)
        try:
            for word in words[:max_tokens]:
                # Even at zero delay, yield to the loop so a long reply cannot starve it and a
                # cancellation can land between deltas.
                await asyncio.sleep(self.delta_delay_s)
                run.deltas += 1
                if usage is not None:
                    usage.output_tokens = run.deltas
                yield word
        except (GeneratorExit, asyncio.CancelledError):
            run.cancelled = True
            raise
        run.finished = True
        if usage is not None:
            usage.finish_reason = "length" if len(words) > max_tokens else "stop"
