"""An answer started on a speculative transcript (the user has fallen silent, the turn has
not ended): it streams at once, so the TTS makes its first audio and the gateway holds it,
but everything that would count it (usage, latency, metrics) waits for the turn to commit,
and the conversation memory holds its rows back (``ConversationMemory.speculate``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import BaseModel

from parley_common.contracts.bus import Interrupt, InterruptReason, Transcript, TurnCommitted
from parley_common.contracts.subjects import SessionChannel
from parley_llm.memory import ConversationMemory

Effect = Callable[[], Awaitable[None]]


@dataclass(slots=True)
class Speculation:
    """One session's speculative answer: at most one at a time."""

    turn_id: int
    text: str  # the words it answers: the final must say the same to commit it
    revision: int  # the memory's when it started: a later change makes its prompt stale
    stt_ms: float | None = None  # the committing final's end-of-turn-to-final time
    committed: bool = False
    cancelled: bool = False
    task: asyncio.Task[None] | None = None  # its answer being generated, once started
    _deferred: list[Effect] = field(default_factory=list)

    @property
    def pending(self) -> bool:
        """Neither committed nor cancelled yet."""
        return not (self.committed or self.cancelled)

    def defer(self, effect: Effect) -> None:
        """Run ``effect`` when the turn commits (never, if it is cancelled)."""
        if not self.cancelled:
            self._deferred.append(effect)

    async def commit(self, stt_ms: float | None) -> None:
        """The turn is the user's: what was deferred happens now, in order."""
        self.committed, self.stt_ms = True, stt_ms
        deferred, self._deferred = self._deferred, []
        for effect in deferred:
            await effect()

    def cancel(self) -> None:
        """The user went on: nothing deferred will happen."""
        self.cancelled = True
        self._deferred.clear()


class Publish(Protocol):
    """Publishes ``message`` on the session's ``channel`` as a message of turn ``turn_id``."""

    def __call__(
        self, channel: SessionChannel, message: BaseModel, turn_id: int
    ) -> Awaitable[None]: ...


class SpeculativeAnswers:
    """One session's speculative answers, at most one at a time (the latest is kept once
    over, so late effects of it are known), and what the STT withdrew."""

    def __init__(self, memory: ConversationMemory, publish: Publish) -> None:
        self.memory = memory
        self._publish = publish
        self.current: Speculation | None = None
        self._withdrawn_seq = 0  # the STT's last SpeculationCancelled

    def begin(self, turn_id: int, text: str) -> Speculation:
        """An answer to the speculative transcript ``text`` starts as turn ``turn_id``; the
        memory holds its rows back until it commits."""
        self.current = Speculation(turn_id, text, self.memory.revision)
        self.memory.speculate(turn_id)
        return self.current

    def of(self, turn_id: int) -> Speculation | None:
        """The speculation of ``turn_id``, if that turn is (or was) the latest one."""
        current = self.current
        return current if current is not None and current.turn_id == turn_id else None

    async def when_committed(self, turn_id: int, effect: Effect) -> None:
        """Run ``effect`` (it counts the turn) now, or once the speculative ``turn_id``
        commits; never if it is dropped."""
        speculation = self.of(turn_id)
        if speculation is None or speculation.committed:
            await effect()
        elif speculation.pending:
            speculation.defer(effect)

    async def commits(self, text: str, final: Transcript | None) -> bool:
        """A user turn saying ``text`` (``final``: its transcript, None when typed) came:
        True when it commits the pending speculative answer (a final with the same words,
        the memory unchanged since it started); any other turn drops that answer."""
        speculation = self.current
        if speculation is None or not speculation.pending:
            return False
        same = text == speculation.text and speculation.revision == self.memory.revision
        if final is not None and same:
            self.memory.commit(speculation.turn_id)
            await self._publish(SessionChannel.REPLY, TurnCommitted(), speculation.turn_id)
            await speculation.commit(final.finalize_ms)
            return True
        # Other words, or a prompt out of date (what the user heard of the last answer
        # came after it started): that answer never happened.
        await self.drop()
        return False

    def withdrawn(self, seq: int) -> bool:
        """Whether the STT's message ``seq`` (a speculative transcript) was withdrawn."""
        return seq <= self._withdrawn_seq

    async def withdraw(self, seq: int) -> None:
        """The STT's ``SpeculationCancelled`` (its message ``seq``): the speculative answer
        is dropped, also when its transcript is still queued (that one never starts)."""
        self._withdrawn_seq = max(self._withdrawn_seq, seq)
        await self.drop()

    def renumbered(self) -> None:
        """A final came: a new STT worker numbers its messages from 1."""
        self._withdrawn_seq = 0

    async def drop(self) -> None:
        """The user went on speaking: the speculative answer stops (its stream closed), is
        forgotten, and the TTS and the gateway drop its turn (reason ``speculation``)."""
        speculation = self.current
        if speculation is None or not speculation.pending:
            return
        speculation.cancel()
        if speculation.task is not None:
            speculation.task.cancel()
        self.memory.discard(speculation.turn_id)
        interrupt = Interrupt(turn_id=speculation.turn_id, reason=InterruptReason.SPECULATION)
        await self._publish(SessionChannel.INTERRUPT, interrupt, speculation.turn_id)
