"""One session on a dialogue worker: user turns in, the assistant's answer streamed out,
cancelled when the user interrupts, remembered as the user actually heard it.

One task owns turn state: final transcripts and typed messages are queued and started one
at a time, so two inputs arriving together can never both stream an answer. Interrupts do
not queue: their callback cancels the answer at once, and what must be stored about them
goes to the memory's write-behind task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from opentelemetry import trace
from pydantic import BaseModel

from parley_common.bus import Bus, MessageMeta, Received
from parley_common.contracts import subjects
from parley_common.contracts.bus import (
    AssistantAction,
    Heard,
    IdlePrompt,
    Interrupt,
    InterruptReason,
    LatencyStages,
    OverlapDismissed,
    OverlapStarted,
    ReplyDelta,
    ReplyDone,
    SessionAssign,
    SpeculationCancelled,
    TextInput,
    Transcript,
    TurnLatency,
    UserText,
    control_adapter,
    interrupt_adapter,
    transcript_adapter,
)
from parley_common.contracts.events import LatencyRecorded, UsageRecorded
from parley_common.contracts.session import InterruptSensitivity
from parley_common.contracts.session import LlmProvider as LlmName
from parley_common.contracts.subjects import SessionChannel
from parley_common.errors import ParleyTimeoutError
from parley_common.fallback import FallbackChain, Link, deadline_env, fallback_env
from parley_common.observability import tracing
from parley_common.observability.metrics import INTERRUPTIONS, latency_histogram
from parley_common.reporting import DurableReporter, FailureReporter
from parley_common.runtime import Runtime
from parley_common.workers import SessionFactory, SessionWork
from parley_llm.idle_prompt import still_there
from parley_llm.knowledge import TurnKnowledge
from parley_llm.memory import ConversationMemory
from parley_llm.overlap_parking import OverlapParking
from parley_llm.providers.base import LlmProvider, LlmUsage
from parley_llm.providers.registry import get_provider
from parley_llm.speculation import Speculation, SpeculativeAnswers
from parley_llm.summary import request_summary
from parley_llm.tools import Toolbox, ToolEffect, ToolTurn, load_toolbox, stream_answer

log = logging.getLogger(__name__)

# Turns whose trace is remembered: messages about older ones are late.
RECENT_TRACES = 8
FIRST_TOKEN_SECONDS = latency_histogram(
    "parley_llm_first_token_seconds", "User turn received to first answer delta published"
)


# How long a provider may take to its first token when a fallback could answer instead.
FIRST_TOKEN_DEADLINE_S = deadline_env("LLM_FIRST_TOKEN_DEADLINE_S", 5.0)
# With no fallback left, how long the user may wait for the first token of an answer, and
# then between two of its deltas, before the turn is given up with an error event: a hung
# provider must not leave a silent call. The gap allows the longest tool call (30 s).
ANSWER_DEADLINE_S = deadline_env("LLM_ANSWER_DEADLINE_S", 20.0)
STALL_DEADLINE_S = deadline_env("LLM_STALL_DEADLINE_S", 45.0)


@dataclass(slots=True)
class _FirstToken:
    received: float  # when the user's turn reached this worker
    ms: float | None = None
    held: bool = False  # a speculative answer's: observed once its turn commits

    def seen(self) -> None:
        if self.ms is None:
            self.ms = (time.perf_counter() - self.received) * 1000
            if not self.held:
                FIRST_TOKEN_SECONDS.observe(self.ms / 1000)

    async def release(self) -> None:
        self.held = False
        if self.ms is not None:
            FIRST_TOKEN_SECONDS.observe(self.ms / 1000)


@dataclass(frozen=True, slots=True)
class _TurnRequest:
    text: str
    transcript: Transcript | None  # None: typed
    received: float
    traceparent: str  # the turn's root span, when the STT started one
    speculative: bool = False  # made while the user was silent, before the turn ended
    seq: int = 0  # the STT's message number, ordering it against SpeculationCancelled
    idle: bool = False  # no user words: the user went quiet, the assistant asks after them


@dataclass(slots=True)
class _Answer:
    turn_id: int
    stt_ms: float | None
    task: asyncio.Task[None] | None = None
    started: bool = False  # a task cancelled before its first step never runs its finally
    speculation: Speculation | None = None


class DialogueSession:
    """Holds the conversation and at most one answer being generated."""

    def __init__(
        self,
        bus: Bus,
        assign: SessionAssign,
        provider: LlmProvider,
        memory: ConversationMemory,
        fallbacks: Sequence[str] = (),
    ) -> None:
        self.bus = bus
        self.sid = assign.session_id
        self.config = assign.config
        self.provider = provider
        self.memory = memory
        self.knowledge = TurnKnowledge(memory.pool, assign)
        self.tools = Toolbox()  # the chatbot's, once run() has loaded them
        self.reporter = DurableReporter(bus, "llm")
        self.chain = FallbackChain(
            "llm",
            Link(assign.config.llm_provider.value, provider),
            fallbacks,
            lambda name: get_provider(LlmName(name)),
            self.reporter,
            self.sid,
            FIRST_TOKEN_DEADLINE_S,
        )
        self.failures = FailureReporter(bus, self.reporter, self.sid, "llm")
        self._requests: asyncio.Queue[_TurnRequest] = asyncio.Queue()
        # Said over the assistant: held while the gateway judges it, a backchannel unanswered.
        self.overlaps: OverlapParking[_TurnRequest] = OverlapParking(self._requests.put_nowait)
        self._answer: _Answer | None = None
        self.speculations = SpeculativeAnswers(memory, self._publish)
        self._tg: asyncio.TaskGroup | None = None
        self._seq = 0
        # Each recent turn's root span, carried by every message of the turn.
        self._traces: OrderedDict[int, str] = OrderedDict()
        self.ready = asyncio.Event()  # set once the session listens to its subjects

    def _subject(self, channel: SessionChannel) -> str:
        return subjects.session(self.sid, channel)

    def _meta(self, turn_id: int) -> MessageMeta:
        self._seq += 1
        traceparent = self._traces.get(turn_id, "")
        return MessageMeta(
            session_id=self.sid, turn_id=turn_id, seq=self._seq, traceparent=traceparent
        )

    async def _publish(self, channel: SessionChannel, message: BaseModel, turn_id: int) -> None:
        await self.bus.publish(self._subject(channel), message, self._meta(turn_id))

    def _trace_turn(self, turn_id: int, traceparent: str) -> None:
        """Remember the turn's root span; a typed turn starts its own trace here."""
        if not traceparent:
            root = tracing.start_turn("llm", self.sid, **{"parley.turn_id": turn_id})
            traceparent = tracing.traceparent_of(root)
            root.end()
        self._traces[turn_id] = traceparent
        while len(self._traces) > RECENT_TRACES:
            self._traces.popitem(last=False)

    @property
    def answering(self) -> int | None:
        """The turn whose answer is being generated now, if any."""
        answer = self._answer
        live = answer is not None and answer.task is not None and not answer.task.done()
        return answer.turn_id if live and answer is not None else None

    def busy(self) -> bool:
        """Whether an answer is being generated (a drain lets it finish)."""
        answer = self._answer
        return answer is not None and answer.task is not None and not answer.task.done()

    async def run(self) -> None:
        """Serve the session until cancelled."""
        await self.memory.load()
        self.tools = await load_toolbox(
            self.memory.pool,
            self.sid,
            record=self.memory.add_tool_call,
            on_effect=self._tool_effect,
            knowledge=self.knowledge.search,
        )
        subs = [
            await self.bus.subscribe(self._subject(SessionChannel.TRANSCRIPT), self._on_transcript),
            await self.bus.subscribe(self._subject(SessionChannel.CONTROL), self._on_control),
            await self.bus.subscribe(self._subject(SessionChannel.INTERRUPT), self._on_interrupt),
        ]
        await self.bus.flush()
        self.ready.set()
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                tg.create_task(self.memory.persist_forever())
                tg.create_task(self.reporter.run())
                tg.create_task(self._turns_forever())
                tg.create_task(self.knowledge.run())
        finally:
            for sub in subs:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
            # The memory's last write is done: a summary now reads the whole conversation.
            with contextlib.suppress(Exception):
                await request_summary(self.bus, self.sid)

    # -- inputs: callbacks only queue or cancel, they never wait on I/O ----------------------
    async def _on_transcript(self, msg: Received) -> None:
        transcript = msg.decode(transcript_adapter)
        if transcript.speculative:
            if self.config.speculative_answer:
                request = _TurnRequest(
                    transcript.text,
                    transcript,
                    time.perf_counter(),
                    msg.meta.traceparent,
                    speculative=True,
                    seq=msg.meta.seq,
                )
                self.overlaps.offer(request, transcript.text)
            return
        if transcript.is_final and self.overlaps.dismissed_final(transcript.text):
            await self.speculations.drop()  # an answer started on it during the pause too
            return
        if transcript.is_final and transcript.text.strip():
            request = _TurnRequest(
                transcript.text, transcript, time.perf_counter(), msg.meta.traceparent
            )
            self.overlaps.offer(request, transcript.text)
        elif not transcript.is_final and transcript.text.strip():
            # The user is still speaking: the knowledge for what they said so far, meanwhile.
            self.knowledge.prefetch(transcript.text, msg.meta.traceparent)

    async def _on_control(self, msg: Received) -> None:
        control = msg.decode(control_adapter)
        if isinstance(control, TextInput):
            self._requests.put_nowait(
                _TurnRequest(control.text, None, time.perf_counter(), msg.meta.traceparent)
            )
        elif isinstance(control, IdlePrompt):
            self._requests.put_nowait(
                _TurnRequest("", None, time.perf_counter(), msg.meta.traceparent, idle=True)
            )

    async def _on_interrupt(self, msg: Received) -> None:
        event = msg.decode(interrupt_adapter)
        if isinstance(event, Interrupt):
            # Cancel first: control never waits behind the database.
            answer = self._answer
            if answer is not None and answer.turn_id == event.turn_id and answer.task:
                answer.task.cancel()
            if event.reason in (InterruptReason.BARGE_IN, InterruptReason.CLIENT):
                self.overlaps.interrupted()  # the overlap was a barge-in: answer it
                self.memory.count_interruption(event.turn_id)
                INTERRUPTIONS.labels("llm", event.reason.value).inc()
        elif isinstance(event, Heard):
            self.memory.keep_heard(event.turn_id, event.chars)
        elif isinstance(event, OverlapStarted | OverlapDismissed):
            self.overlaps.judged(event)
        elif isinstance(event, SpeculationCancelled):
            await self.speculations.withdraw(msg.meta.seq)

    # -- the one owner of turn state ---------------------------------------------------------
    async def _turns_forever(self) -> None:
        try:
            while True:
                await self._start_turn(await self._requests.get())
        finally:
            if self._answer is not None and self._answer.task is not None:
                self._answer.task.cancel()

    async def _start_turn(self, request: _TurnRequest) -> None:
        if request.idle:
            await self._ask_if_still_there()
            return
        if await self._settled(request):
            return
        answer = self._answer
        if answer is not None and answer.task is not None and not answer.task.done():
            spoken = request.transcript is not None
            if spoken and self.config.interrupt_sensitivity is InterruptSensitivity.LOW:
                # Low sensitivity lets the assistant finish before it takes the next turn.
                await asyncio.gather(answer.task, return_exceptions=True)
            else:
                reason = InterruptReason.SUPERSEDED if spoken else InterruptReason.USER_TEXT
                answer.task.cancel()
                await self.bus.publish(
                    self._subject(SessionChannel.INTERRUPT),
                    Interrupt(turn_id=answer.turn_id, reason=reason),
                    self._meta(answer.turn_id),
                )
                await asyncio.gather(answer.task, return_exceptions=True)
            if not answer.started:
                # Cancelled before it began: its turn still gets its (empty) end.
                await self._finish(answer.turn_id, "", True, "interrupted", answer.stt_ms, None)
        turn_id = self.memory.last_turn_id + 1
        self._trace_turn(turn_id, request.traceparent)
        transcript = request.transcript
        speculation = None
        if request.speculative:
            speculation = self.speculations.begin(turn_id, request.text)
        self.memory.add_user(
            turn_id,
            request.text,
            confidence=transcript.confidence if transcript else None,
            language=transcript.language if transcript else None,
            words=transcript.words if transcript else (),
            emotion=transcript.emotion if transcript else None,
        )
        await self.bus.publish(
            self._subject(SessionChannel.REPLY),
            UserText(
                text=request.text,
                typed=transcript is None,
                language=self.memory.language,
                speculative=speculation is not None,
            ),
            self._meta(turn_id),
        )
        if speculation is not None and speculation.cancelled:
            return  # the user went on while it was being announced
        stt_ms = transcript.finalize_ms if transcript else None
        assert self._tg is not None
        answer = _Answer(turn_id, stt_ms, speculation=speculation)
        answer.task = self._tg.create_task(self._generate(answer, request.received))
        if speculation is not None:
            speculation.task = answer.task
        self._answer = answer

    async def _ask_if_still_there(self) -> None:
        """The assistant's own turn, without user words: "are you still there?" in the
        user's language, remembered and stored like any answer. Not when the user has spoken
        meanwhile (a turn is answered or waiting)."""
        if self.busy() or not self._requests.empty():
            return
        turn_id = self.memory.last_turn_id + 1
        self._trace_turn(turn_id, "")
        text = still_there(self.memory.language or self.config.language)
        await self.bus.publish(
            self._subject(SessionChannel.REPLY), ReplyDelta(text=text), self._meta(turn_id)
        )
        await self._finish(turn_id, text, False, "stop", None, None)

    async def _generate(self, answer: _Answer, received: float) -> None:
        answer.started = True
        turn_id, stt_ms = answer.turn_id, answer.stt_ms
        parts: list[str] = []
        timing = _FirstToken(received, held=answer.speculation is not None)
        if answer.speculation is not None:
            answer.speculation.defer(timing.release)
        finish_reason, interrupted = "stop", False
        link: Link[LlmProvider] | None = self.chain.primary
        try:
            while link is not None:
                try:
                    with tracing.child_span(
                        "llm.stream",
                        self._traces.get(turn_id, ""),
                        "llm",
                        **{
                            "gen_ai.operation.name": "chat",
                            "gen_ai.system": link.name,
                            "parley.turn_id": turn_id,
                        },
                    ):
                        await self._stream_from(link, turn_id, parts, timing)
                    break
                except Exception as exc:
                    # Before the first token another provider can still give the whole
                    # answer; after it, the user has seen part of this one.
                    following = self.chain.after(link.name) if not parts else None
                    if following is None:
                        raise
                    self.chain.switched(link.name, following.name, exc, self._meta(turn_id))
                    link = following
        except asyncio.CancelledError:
            finish_reason, interrupted = "interrupted", True
            raise
        except Exception as exc:
            finish_reason = "error"
            await self.failures.failed(
                "generation",
                exc,
                code="generation_failed",
                fallback="the assistant could not answer; please try again",
                provider=link.name if link is not None else self.config.llm_provider.value,
                meta=self._meta(turn_id),
            )
        finally:
            text = "".join(parts).strip()
            dropped = answer.speculation is not None and answer.speculation.cancelled
            if not dropped:  # a dropped speculation leaves no record
                # Shielded: the record of the answer must survive the cancellation that cut it.
                await asyncio.shield(
                    self._finish(turn_id, text, interrupted, finish_reason, stt_ms, timing.ms)
                )

    async def _stream_from(
        self, link: Link[LlmProvider], turn_id: int, parts: list[str], timing: _FirstToken
    ) -> None:
        """Stream the answer from one provider; its first token must come within the
        deadline when another provider could take over, and within ``ANSWER_DEADLINE_S``
        (each later delta within ``STALL_DEADLINE_S``) when none could."""
        reply = self._subject(SessionChannel.REPLY)
        usage = LlmUsage()
        handover = self.chain.deadline(link.name)  # None: no provider follows this one
        messages = self.memory.messages()
        traceparent = self._traces.get(turn_id, "")
        stream = stream_answer(
            link.provider,
            await self.knowledge.prompt(turn_id, messages, traceparent),
            self.config.response_style.max_tokens,
            self.tools,
            ToolTurn(turn_id, traceparent),
            model=self.config.llm_model if link is self.chain.primary else None,
            usage=usage,
        )
        try:
            # aclosing: a cancelled answer stops the model now, not when garbage is collected.
            async with contextlib.aclosing(stream):
                deltas = aiter(stream)
                while True:
                    first = not parts
                    try:
                        async with asyncio.timeout(
                            (handover or ANSWER_DEADLINE_S) if first else STALL_DEADLINE_S
                        ):
                            delta = await anext(deltas, None)
                    except TimeoutError as exc:
                        if first and handover is not None:
                            raise  # the next provider answers instead
                        waited = "its first word" if first else "its next word"
                        raise ParleyTimeoutError(
                            f"the dialogue model stopped answering: {waited} did not come"
                            " in time; please try again",
                            provider=link.name,
                        ) from exc
                    if delta is None:
                        return
                    if not delta:
                        continue
                    timing.seen()
                    parts.append(delta)
                    await self.bus.publish(reply, ReplyDelta(text=delta), self._meta(turn_id))
        finally:
            # A cancelled answer is billed for what was generated before it stopped.
            await self._report_usage(turn_id, link.name, usage)

    async def _tool_effect(self, effect: ToolEffect, turn_id: int) -> None:
        """A built-in tool acts on the call (hang up, text mode): the gateway carries it out."""
        action = AssistantAction(turn_id=turn_id, action=effect)
        await self.bus.publish(self._subject(SessionChannel.STATUS), action, self._meta(turn_id))

    async def _report_usage(self, turn_id: int, provider: str, usage: LlmUsage) -> None:
        span = trace.get_current_span()
        span.set_attribute("gen_ai.request.model", self.config.llm_model or "default")
        if usage.model:
            span.set_attribute("gen_ai.response.model", usage.model)
        span.set_attribute("gen_ai.usage.input_tokens", usage.input_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", usage.output_tokens)
        events: list[UsageRecorded] = []
        for unit, quantity in (
            ("input_tokens", usage.input_tokens),
            ("output_tokens", usage.output_tokens),
        ):
            if not quantity:
                continue
            event = UsageRecorded(
                session_id=self.sid,
                at=datetime.now(UTC),
                service="llm",
                provider=provider,
                model=usage.model,
                quantity=quantity,
                unit=unit,  # type: ignore[arg-type]  # one of the two literals above
            )
            events.append(event)

        async def report() -> None:
            for event in events:
                self.reporter.report("usage.recorded", event, self._meta(turn_id))

        await self.speculations.when_committed(turn_id, report)

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
            self.memory.add_assistant(turn_id, text, interrupted, self.knowledge.sources(turn_id))
        speculation = self.speculations.of(turn_id)

        async def report() -> None:
            # A committed speculation's STT stage is its final's (end of turn to final).
            stt = speculation.stt_ms if speculation is not None else stt_ms
            stages = LatencyStages(stt_final_ms=stt, llm_first_token_ms=first_token_ms)
            await self.bus.publish(
                self._subject(SessionChannel.STATUS),
                TurnLatency(turn_id=turn_id, stages=stages),
                self._meta(turn_id),
            )
            event = LatencyRecorded(
                session_id=self.sid, at=datetime.now(UTC), turn_id=turn_id, stages=stages
            )
            self.reporter.report("latency.recorded", event, self._meta(turn_id))

        await self.speculations.when_committed(turn_id, report)

    async def _settled(self, request: _TurnRequest) -> bool:
        """Speculation's part of a new request; True when nothing more is to be done with it
        (its final committed the speculative answer, or a speculative transcript is not to
        be answered)."""
        if not request.speculative and await self.speculations.commits(
            request.text, request.transcript
        ):
            return True
        answer = self._answer
        if answer is not None and answer.speculation is not None and answer.speculation.cancelled:
            if answer.task is not None:
                await asyncio.gather(answer.task, return_exceptions=True)
            self._answer = None  # dropped: nothing of it is to be interrupted or ended
        if not request.speculative:
            if request.transcript is not None:
                self.speculations.renumbered()
            return False
        # Not while the assistant answers (it would be cut before the user's turn is sure),
        # nor with tools (a call could act on the world), nor once withdrawn.
        return bool(
            self.speculations.withdrawn(request.seq)
            or self.tools.specs
            or self.answering is not None
        )


def open_session(runtime: Runtime) -> SessionFactory:
    """The factory the worker calls for each assigned session."""

    async def factory(assign: SessionAssign) -> SessionWork:
        assert runtime.pool is not None
        provider = get_provider(assign.config.llm_provider)
        memory = ConversationMemory(runtime.pool, assign.session_id, assign.config.system_prompt)
        fallbacks = [p.value for p in assign.config.llm_fallback] or fallback_env("llm")
        return DialogueSession(runtime.bus, assign, provider, memory, fallbacks)

    return factory
