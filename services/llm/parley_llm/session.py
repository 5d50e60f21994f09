"""One session on a dialogue worker: user turns in, the assistant's answer streamed out,
cancelled when the user interrupts, remembered as the user actually heard it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime

from parley_common.bus import Bus, MessageMeta, Received
from parley_common.contracts import subjects
from parley_common.contracts.bus import (
    Heard,
    Interrupt,
    InterruptReason,
    ReplyDelta,
    ReplyDone,
    ServiceError,
    SessionAssign,
    TextInput,
    Transcript,
    TurnLatency,
    UserText,
    control_adapter,
    interrupt_adapter,
    transcript_adapter,
)
from parley_common.contracts.events import LatencyRecorded
from parley_common.contracts.session import InterruptSensitivity
from parley_common.contracts.subjects import SessionChannel
from parley_common.observability.metrics import latency_histogram
from parley_common.runtime import Runtime
from parley_common.workers import SessionFactory, SessionWork
from parley_llm.memory import ConversationMemory
from parley_llm.providers.base import LlmProvider
from parley_llm.providers.registry import get_provider

log = logging.getLogger(__name__)

FIRST_TOKEN_SECONDS = latency_histogram(
    "parley_llm_first_token_seconds", "User turn received to first answer delta published"
)


class DialogueSession:
    """Holds the conversation and at most one answer being generated."""

    def __init__(
        self, bus: Bus, assign: SessionAssign, provider: LlmProvider, memory: ConversationMemory
    ) -> None:
        self.bus = bus
        self.sid = assign.session_id
        self.config = assign.config
        self.provider = provider
        self.memory = memory
        self._current: tuple[int, asyncio.Task[None]] | None = None
        self._seq = 0

    def _subject(self, channel: SessionChannel) -> str:
        return subjects.session(self.sid, channel)

    def _meta(self, turn_id: int) -> MessageMeta:
        self._seq += 1
        return MessageMeta(session_id=self.sid, turn_id=turn_id, seq=self._seq)

    async def run(self) -> None:
        """Serve the session until cancelled."""
        await self.memory.load()
        subs = [
            await self.bus.subscribe(self._subject(SessionChannel.TRANSCRIPT), self._on_transcript),
            await self.bus.subscribe(self._subject(SessionChannel.CONTROL), self._on_control),
            await self.bus.subscribe(self._subject(SessionChannel.INTERRUPT), self._on_interrupt),
        ]
        try:
            await asyncio.Event().wait()
        finally:
            for sub in subs:
                await sub.unsubscribe()
            if self._current is not None:
                self._current[1].cancel()

    async def _on_transcript(self, msg: Received) -> None:
        transcript = msg.decode(transcript_adapter)
        if transcript.is_final and transcript.text.strip():
            await self._start_turn(transcript.text, transcript=transcript)

    async def _on_control(self, msg: Received) -> None:
        control = msg.decode(control_adapter)
        if isinstance(control, TextInput):
            await self._start_turn(control.text, transcript=None)

    async def _on_interrupt(self, msg: Received) -> None:
        event = msg.decode(interrupt_adapter)
        if isinstance(event, Interrupt):
            if event.reason in (InterruptReason.BARGE_IN, InterruptReason.CLIENT):
                await self.memory.count_interruption(event.turn_id)
            if self._current is not None and self._current[0] == event.turn_id:
                self._current[1].cancel()
        elif isinstance(event, Heard):
            await self.memory.keep_heard(event.turn_id, event.chars)

    async def _start_turn(self, text: str, transcript: Transcript | None) -> None:
        received = time.perf_counter()
        if self._current is not None and not self._current[1].done():
            turn_id, task = self._current
            if (
                transcript is not None
                and self.config.interrupt_sensitivity is InterruptSensitivity.LOW
            ):
                # Low sensitivity lets the assistant finish before it takes the next turn.
                await asyncio.gather(task, return_exceptions=True)
            else:
                reason = (
                    InterruptReason.USER_TEXT if transcript is None else InterruptReason.SUPERSEDED
                )
                await self.bus.publish(
                    self._subject(SessionChannel.INTERRUPT),
                    Interrupt(turn_id=turn_id, reason=reason),
                    self._meta(turn_id),
                )
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        turn_id = self.memory.last_turn_id + 1
        await self.memory.add_user(
            turn_id,
            text,
            confidence=transcript.confidence if transcript else None,
            language=transcript.language if transcript else None,
            words=transcript.words if transcript else (),
        )
        await self.bus.publish(
            self._subject(SessionChannel.REPLY),
            UserText(text=text, typed=transcript is None),
            self._meta(turn_id),
        )
        stt_ms = transcript.finalize_ms if transcript else None
        task = asyncio.create_task(self._answer(turn_id, received, stt_ms))
        self._current = (turn_id, task)

    async def _answer(self, turn_id: int, received: float, stt_ms: float | None) -> None:
        reply = self._subject(SessionChannel.REPLY)
        parts: list[str] = []
        first_token_ms: float | None = None
        finish_reason, interrupted = "stop", False
        try:
            stream = self.provider.stream(
                self.memory.messages(), self.config.response_style.max_tokens
            )
            # aclosing: a cancelled answer stops the model now, not when garbage is collected.
            async with contextlib.aclosing(stream):
                async for delta in stream:
                    if not delta:
                        continue
                    if first_token_ms is None:
                        first_token_ms = (time.perf_counter() - received) * 1000
                        FIRST_TOKEN_SECONDS.observe(first_token_ms / 1000)
                    parts.append(delta)
                    await self.bus.publish(reply, ReplyDelta(text=delta), self._meta(turn_id))
        except asyncio.CancelledError:
            finish_reason, interrupted = "interrupted", True
            raise
        except Exception as exc:
            log.exception("generation failed")
            finish_reason = "error"
            await self.bus.publish(
                self._subject(SessionChannel.STATUS),
                ServiceError(service="llm", code="generation_failed", message=str(exc)),
                self._meta(turn_id),
            )
        finally:
            text = "".join(parts).strip()
            # Shielded: the record of the answer must survive the cancellation that cut it.
            await asyncio.shield(
                self._finish(turn_id, text, interrupted, finish_reason, stt_ms, first_token_ms)
            )

    async def _finish(
        self,
        turn_id: int,
        text: str,
        interrupted: bool,
        finish_reason: str,
        stt_ms: float | None,
        first_token_ms: float | None,
    ) -> None:
        await self.bus.publish(
            self._subject(SessionChannel.REPLY),
            ReplyDone(text=text, interrupted=interrupted, finish_reason=finish_reason),
            self._meta(turn_id),
        )
        if text:
            await self.memory.add_assistant(turn_id, text, interrupted)
        latency = TurnLatency(
            turn_id=turn_id, stt_final_ms=stt_ms, llm_first_token_ms=first_token_ms
        )
        await self.bus.publish(self._subject(SessionChannel.STATUS), latency, self._meta(turn_id))
        event = LatencyRecorded(
            session_id=self.sid,
            at=datetime.now(UTC),
            turn_id=turn_id,
            stt_final_ms=stt_ms,
            llm_first_token_ms=first_token_ms,
        )
        await self.bus.js_publish(subjects.event("latency.recorded"), event, self._meta(turn_id))


def open_session(runtime: Runtime) -> SessionFactory:
    """The factory the worker calls for each assigned session."""

    async def factory(assign: SessionAssign) -> SessionWork:
        assert runtime.pool is not None
        provider = get_provider(assign.config.llm_provider)
        memory = ConversationMemory(runtime.pool, assign.session_id, assign.config.system_prompt)
        return DialogueSession(runtime.bus, assign, provider, memory)

    return factory
