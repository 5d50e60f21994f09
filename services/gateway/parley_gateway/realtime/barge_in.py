"""When the user's speech interrupts the assistant.

Only the gateway knows what is audible, so it decides. Low sensitivity never interrupts.
With ``barge_in="stop"`` speech that starts while the assistant's turn is audible
interrupts it once it has lasted the sensitivity's minimum. With ``"pause"`` (the default)
the turn's audio pauses at once, and the overlap is judged (``overlap.py``) from its
transcript and duration: an interruption cancels the turn as before, a backchannel or a
noise resumes it where it paused.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import Counter

from parley_common.contracts.bus import Transcript
from parley_common.contracts.session import InterruptSensitivity
from parley_common.observability.metrics import latency_histogram
from parley_gateway.realtime.overlap import Overlap, Verdict

Interrupt = Callable[[int, float], Awaitable[None]]  # (turn id, speech onset perf time)

DECISIONS = Counter(
    "parley_barge_in_decisions_total",
    "Speech over the assistant, by what it was judged (words/long interrupt, "
    "backchannel/noise resume)",
    ["kind"],
)
DECISION_SECONDS = latency_histogram(
    "parley_barge_in_decision_seconds",
    "Onset of speech over the assistant to its verdict (its audio is paused meanwhile)",
    ("kind",),
)


class Pauser(Protocol):
    """Holds the assistant's audio while an overlap is judged."""

    async def pause(self, turn_id: int) -> None:
        """Stop turn ``turn_id``'s playout where it is."""

    async def resume(self, turn_id: int, text: str) -> None:
        """Play turn ``turn_id`` on; ``text`` is what the overlap said (may be empty)."""

    async def release(self, turn_id: int) -> None:
        """Whatever the verdict did, playout is not left paused for ``turn_id``."""


@dataclass(frozen=True)
class Judging:
    """Pause-and-judge settings (the gateway's ``BARGE_IN_*``)."""

    pauser: Pauser
    window_s: float
    transcript_wait_s: float


class BargeInPolicy:
    """Confirms barge-ins; at most one confirmation (or judgement) is pending at a time."""

    def __init__(
        self,
        sensitivity: InterruptSensitivity,
        audible_turn: Callable[[], int | None],
        interrupt: Interrupt,
        tg: asyncio.TaskGroup,
        judging: Judging | None = None,
    ) -> None:
        self.threshold_ms = sensitivity.barge_in_ms
        self.audible_turn = audible_turn
        self.interrupt = interrupt
        self.judging = judging
        self._tg = tg
        self._pending: asyncio.Task[None] | None = None
        self._overlap: Overlap | None = None
        self._news = asyncio.Event()

    def speech_started(self, onset: float) -> None:
        """The user started speaking at ``onset`` (``perf_counter`` time)."""
        if self._overlap is not None:
            self._overlap.speech_started()
            self._news.set()
            return
        self.cancel()
        turn_id = self.audible_turn()
        if self.threshold_ms is None or turn_id is None:
            return
        if self.judging is None:
            self._pending = self._tg.create_task(self._confirm(turn_id, onset, self.threshold_ms))
            return
        self._overlap = Overlap(onset, self.judging.window_s, self.judging.transcript_wait_s)
        self._pending = self._tg.create_task(self._judge(turn_id, self._overlap, self.judging))

    def speech_stopped(self, speech_ms: int = 0) -> None:
        """The user stopped after ``speech_ms`` of voice: before the minimum, no barge-in;
        an overlap being judged learns how long it was."""
        if self._overlap is not None:
            self._overlap.speech_stopped(time.perf_counter(), speech_ms)
            self._news.set()
        elif self.judging is None:
            self.cancel()

    def heard(self, transcript: Transcript) -> None:
        """A transcript (partial, speculative or final) of what the user is saying."""
        if self._overlap is not None:
            self._overlap.heard(transcript)
            self._news.set()

    def cancel(self) -> None:
        """Forget a pending confirmation or judgement."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        self._overlap = None

    async def _confirm(self, turn_id: int, onset: float, threshold_ms: int) -> None:
        remaining = threshold_ms / 1000 - (time.perf_counter() - onset)
        if remaining > 0:
            await asyncio.sleep(remaining)
        if self.audible_turn() == turn_id:
            await self.interrupt(turn_id, onset)

    async def _judge(self, turn_id: int, overlap: Overlap, judging: Judging) -> None:
        if self.audible_turn() != turn_id:
            self._overlap = None
            return  # cut meanwhile: there is nothing to pause
        await judging.pauser.pause(turn_id)
        while (verdict := overlap.verdict(time.perf_counter())) is None:
            self._news.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._news.wait(), overlap.next_look(time.perf_counter()))
        self._overlap = None
        decided_s = time.perf_counter() - overlap.onset
        DECISIONS.labels(verdict.value).inc()
        DECISION_SECONDS.labels(verdict.value).observe(decided_s)
        if verdict.interrupts:
            # Even if another turn began meanwhile (an answer started on the overlap's
            # speculative transcript): the paused one is what the user cut short.
            await self.interrupt(turn_id, overlap.onset)
            # A turn cut before its pause took hold (a speculative one withdrawn) is not
            # dropped again: its pause must not outlive it.
            await judging.pauser.release(turn_id)
        else:
            await judging.pauser.resume(turn_id, overlap.text)


__all__ = ["DECISIONS", "DECISION_SECONDS", "BargeInPolicy", "Judging", "Pauser", "Verdict"]
