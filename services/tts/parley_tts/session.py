"""One session on a TTS worker: the answer's text deltas cut into sentences, each spoken as
soon as it is complete, resampled to the session's rate and streamed out in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from opentelemetry.trace import Span

from parley_common.bus import Bus, MessageMeta, Received
from parley_common.bus.audio import AudioOutMeta
from parley_common.contracts import subjects
from parley_common.contracts.bus import (
    Interrupt,
    LatencyStages,
    ReplyDelta,
    ReplyDone,
    SessionAssign,
    TurnCommitted,
    TurnLatency,
    UserText,
    interrupt_adapter,
    reply_adapter,
)
from parley_common.contracts.events import LatencyRecorded, UsageRecorded
from parley_common.contracts.session import TtsProvider as TtsName
from parley_common.contracts.subjects import SessionChannel
from parley_common.fallback import FallbackChain, Link, deadline_env, fallback_env
from parley_common.observability import tracing
from parley_common.observability.metrics import AUDIO_FRAMES, latency_histogram
from parley_common.reporting import DurableReporter, FailureReporter
from parley_common.runtime import Runtime
from parley_common.workers import SessionFactory, SessionWork
from parley_tts.languages import is_refusal, voice_for
from parley_tts.providers.base import StreamingTtsProvider, TtsProvider
from parley_tts.providers.registry import get_provider
from parley_tts.resample import Resampler
from parley_tts.sentences import Sentence, SentenceSplitter
from parley_tts.speculation import HeldReports
from parley_tts.streamed import StreamedText
from parley_tts.voices import session_voice

log = logging.getLogger(__name__)

MAX_CHUNK_MS = 500  # keeps bus messages small whatever a provider yields at once
MIN_CHUNK_MS = 100
MAX_AHEAD_MS = 5000
# How long a provider may take to first audio when a fallback could speak instead.
FIRST_AUDIO_DEADLINE_S = deadline_env("TTS_FIRST_AUDIO_DEADLINE_S", 3.0)
# Turns older than this many behind the newest are forgotten: late messages about them
# are dropped by turn id, and a call of any length keeps a bounded state.
RECENT_TURNS = 4

FRAMES_OUT = AUDIO_FRAMES.labels("tts", "out")
FIRST_BYTE_SECONDS = latency_histogram(
    "parley_tts_first_byte_seconds", "First answer delta received to first audio published"
)


@dataclass
class _Turn:
    turn_id: int
    splitter: SentenceSplitter = field(default_factory=SentenceSplitter)
    first_delta_at: float | None = None
    first_audio_sent: bool = False
    first_audio_at: float = 0.0
    audio_ms: float = 0.0  # published so far
    characters: int = 0
    streamed: StreamedText | None = None  # the text side, for input-streaming providers
    link: Link[TtsProvider] | None = None  # a fallback that took the rest of the turn over
    traceparent: str = ""  # the turn's root span, carried by its audio
    language: str | None = None  # the answer's: its voice speaks it
    refused: bool = False  # no voice for its language: said once, not once per sentence
    span: Span | None = None  # tts.synthesize, from the turn's first reply to its end

    def close_span(self, cancelled: bool = False) -> None:
        """End the turn's span (once)."""
        if self.span is not None:
            if cancelled:
                self.span.set_attribute("parley.cancelled", True)
            self.span.set_attribute("parley.characters", self.characters)
            self.span.end()
            self.span = None


_END = None  # queued after a turn's last sentence
_STREAM = Sentence("", 0, 0)  # queued once per turn spoken through an input stream


class TtsSession:
    """Speaks the answers of one session, one sentence at a time, in order."""

    def __init__(
        self,
        bus: Bus,
        assign: SessionAssign,
        provider: TtsProvider,
        fallbacks: Sequence[str] = (),
    ) -> None:
        self.bus = bus
        self.sid = assign.session_id
        self.config = assign.config
        self.provider = provider
        # Providers that take text as it is written are fed the deltas, not sentences.
        self.streaming = isinstance(provider, StreamingTtsProvider)
        self.rate = assign.config.output_sample_rate
        self.reporter = DurableReporter(bus, "tts")
        self.failures = FailureReporter(bus, self.reporter, self.sid, "tts")
        self.chain = FallbackChain(
            "tts",
            Link(assign.config.tts_provider.value, provider),
            fallbacks,
            lambda name: get_provider(TtsName(name)),
            self.reporter,
            self.sid,
            FIRST_AUDIO_DEADLINE_S,
        )
        self._turns: dict[int, _Turn] = {}
        # The language answers are asked in, as each turn's UserText says (switches mid-call).
        self._language = assign.config.language
        self._cancelled: set[int] = set()
        self._held = HeldReports()  # a speculative turn's latency and usage, until it commits
        self._newest = 0
        self.ready = asyncio.Event()  # set once the session listens to its subjects
        self._queue: asyncio.Queue[tuple[_Turn, Sentence | None]] = asyncio.Queue()
        self._speaking: tuple[int, asyncio.Task[None]] | None = None
        self._seq = 0

    def _subject(self, channel: SessionChannel) -> str:
        return subjects.session(self.sid, channel)

    def _meta(self, turn_id: int, extra: dict[str, str] | None = None) -> MessageMeta:
        self._seq += 1
        turn = self._turns.get(turn_id)
        return MessageMeta(
            session_id=self.sid,
            turn_id=turn_id,
            seq=self._seq,
            traceparent=turn.traceparent if turn else "",
            extra=extra or {},
        )

    def _turn(self, turn_id: int, traceparent: str) -> _Turn:
        """The state of ``turn_id``; a new turn starts its span in the turn's trace."""
        turn = self._turns.get(turn_id)
        if turn is None:
            turn = self._turns[turn_id] = _Turn(
                turn_id, traceparent=traceparent, language=self._language
            )
            turn.span = tracing.start_child(
                "tts.synthesize",
                traceparent,
                "tts",
                **{
                    "parley.provider": self.config.tts_provider.value,
                    "parley.model": self.config.tts_model or "default",
                    "parley.turn_id": turn_id,
                },
            )
        return turn

    @property
    def tracked_turns(self) -> int:
        """Turns this session holds state for (bounded by RECENT_TURNS)."""
        return len(self._turns) + len(self._cancelled)

    def _seen(self, turn_id: int) -> None:
        """A reply for ``turn_id`` arrived: forget what is older than the recent turns."""
        if turn_id <= self._newest:
            return
        self._newest = turn_id
        self._prune()

    def _prune(self) -> None:
        oldest = self._newest - RECENT_TURNS
        self._cancelled = set(sorted(t for t in self._cancelled if t > oldest)[-RECENT_TURNS:])
        for stale in [t for t in self._turns if t <= oldest]:
            self._turns.pop(stale).close_span(cancelled=True)

    def busy(self) -> bool:
        """Whether a turn is being spoken (a drain lets it finish)."""
        return bool(self._turns)

    async def run(self) -> None:
        """Serve the session until cancelled."""
        subs = [
            await self.bus.subscribe(self._subject(SessionChannel.REPLY), self._on_reply),
            await self.bus.subscribe(self._subject(SessionChannel.INTERRUPT), self._on_interrupt),
        ]
        await self.bus.flush()
        self.ready.set()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.reporter.run())
                tg.create_task(self._speak_forever())
        finally:
            for sub in subs:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()

    async def _speak_forever(self) -> None:
        try:
            while True:
                turn, sentence = await self._queue.get()
                if turn.turn_id in self._cancelled:
                    continue
                if sentence is _END:
                    await self._end_turn(turn)
                    continue
                # A task of its own, so an interrupt can cancel this sentence and only it.
                speak = self._speak_streamed(turn) if sentence is _STREAM else None
                task = asyncio.create_task(speak or self._speak(turn, sentence))
                self._speaking = (turn.turn_id, task)
                await asyncio.gather(task, return_exceptions=True)
                self._speaking = None
        finally:
            if self._speaking is not None:
                self._speaking[1].cancel()

    async def _on_reply(self, msg: Received) -> None:
        turn_id = msg.meta.turn_id
        if turn_id in self._cancelled or turn_id <= self._newest - RECENT_TURNS:
            return
        self._seen(turn_id)
        event = msg.decode(reply_adapter)
        if isinstance(event, UserText) and event.language:
            self._language = event.language
        if isinstance(event, UserText) and event.speculative:
            self._held.speculative(turn_id)
        elif isinstance(event, TurnCommitted):
            await self._held.committed(turn_id)
        if isinstance(event, UserText) and self.streaming:
            # Connect while the model thinks: the handshake is then off the path between
            # the first token and the first audio.
            turn = self._turn(turn_id, msg.meta.traceparent)
            turn.streamed = StreamedText()
            self._queue.put_nowait((turn, _STREAM))
        elif isinstance(event, ReplyDelta | ReplyDone):
            turn = self._turn(turn_id, msg.meta.traceparent)
            if self.streaming:
                await self._stream_reply(turn, event)
            else:
                self._sentence_reply(turn, event)

    def _sentence_reply(self, turn: _Turn, event: ReplyDelta | ReplyDone) -> None:
        if isinstance(event, ReplyDelta):
            if turn.first_delta_at is None:
                turn.first_delta_at = time.perf_counter()
            for sentence in turn.splitter.feed(event.text):
                self._queue.put_nowait((turn, sentence))
            return
        rest = turn.splitter.flush()
        if rest is not None and not event.interrupted:
            self._queue.put_nowait((turn, rest))
        self._queue.put_nowait((turn, _END))

    async def _stream_reply(self, turn: _Turn, event: ReplyDelta | ReplyDone) -> None:
        if turn.streamed is not None and turn.streamed.fallen_back:
            self._sentence_reply(turn, event)
            return
        if turn.streamed is None:  # the turn's start was missed (this worker took over)
            if isinstance(event, ReplyDone):
                self._queue.put_nowait((turn, _END))  # an empty answer: nothing to say
                return
            turn.streamed = StreamedText()
            self._queue.put_nowait((turn, _STREAM))
        if turn.first_delta_at is None:
            turn.first_delta_at = time.perf_counter()
        try:
            if isinstance(event, ReplyDelta):
                await turn.streamed.add(event.text)
            else:
                await turn.streamed.finish()
                self._queue.put_nowait((turn, _END))
        except Exception as exc:
            if turn.turn_id not in self._cancelled:  # else: the stream was closed by the cut
                await self._report_failure(turn.turn_id, exc)

    async def _on_interrupt(self, msg: Received) -> None:
        event = msg.decode(interrupt_adapter)
        if not isinstance(event, Interrupt):
            return
        if self._speaking is not None and self._speaking[0] == event.turn_id:
            self._speaking[1].cancel()
        self._cancelled.add(event.turn_id)
        self._held.dropped(event.turn_id)
        cut = self._turns.pop(event.turn_id, None)
        if cut is not None:
            cut.close_span(cancelled=True)
        self._prune()

    async def _speak(self, turn: _Turn, sentence: Sentence) -> None:
        if turn.refused:
            return
        link = turn.link or self.chain.primary
        while True:
            audio_before = turn.audio_ms
            try:
                await self._synthesize(turn, link, sentence)
                turn.characters += len(sentence.text)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Before this sentence was heard another provider can still say it; the rest
                # of the turn then stays with that provider.
                following = self.chain.after(link.name) if turn.audio_ms == audio_before else None
                if following is None:
                    turn.refused = is_refusal(exc)
                    await self._report_failure(turn.turn_id, exc)
                    return
                self.chain.switched(link.name, following.name, exc, self._meta(turn.turn_id))
                link = turn.link = following

    async def _synthesize(self, turn: _Turn, link: Link[TtsProvider], sentence: Sentence) -> None:
        resampler = Resampler(link.provider.sample_rate, self.rate)
        span = AudioOutMeta(self.rate, sentence.start, sentence.end).headers()
        min_bytes = self.rate * 2 * MIN_CHUNK_MS // 1000
        pending = bytearray()
        primary = link is self.chain.primary
        choice = voice_for(
            link.provider,
            turn.language,
            self.config.voice if primary else None,
            self.config.tts_model if primary else None,
        )
        stream = link.provider.synthesize(
            sentence.text, choice.voice, model=choice.model, speed=self.config.speed
        )
        async with contextlib.aclosing(stream):
            chunks = aiter(stream)
            async with asyncio.timeout(self.chain.deadline(link.name)):
                raw = await anext(chunks, b"")  # the first audio, within the deadline
            while raw:
                pending += resampler.process(raw)
                # A turn's first audio goes out at once; after that, providers that yield
                # tiny chunks are batched so the bus carries fewer messages.
                if len(pending) >= min_bytes or not turn.first_audio_sent:
                    await self._send_audio(turn, bytes(pending), span)
                    pending.clear()
                raw = await anext(chunks, b"")
        pending += resampler.flush()
        await self._send_audio(turn, bytes(pending), span)

    async def _speak_streamed(self, turn: _Turn) -> None:
        assert isinstance(self.provider, StreamingTtsProvider)
        assert turn.streamed is not None
        try:
            choice = voice_for(
                self.provider, turn.language, self.config.voice, self.config.tts_model
            )
            async with asyncio.timeout(self.chain.deadline(self.chain.primary.name)):
                stream = await self.provider.open_stream(
                    choice.voice,
                    model=choice.model,
                    speed=self.config.speed,
                    sample_rate=self.rate,
                )
        except Exception as exc:
            await self._stream_failed(turn, exc)
            return
        resampler = Resampler(stream.sample_rate, self.rate)
        span = AudioOutMeta(self.rate).headers()
        try:
            await turn.streamed.attach(stream)
            async for chunk in stream:
                span = AudioOutMeta(self.rate, chunk.text_start, chunk.text_end).headers()
                await self._send_audio(turn, resampler.process(chunk.pcm), span)
            await self._send_audio(turn, resampler.flush(), span)
        except asyncio.CancelledError:
            # Interrupted: the provider drops what it has not spoken (bounded in time).
            with contextlib.suppress(Exception):
                await stream.clear()
            raise
        except Exception as exc:
            await self._stream_failed(turn, exc)
        finally:
            turn.characters += turn.streamed.characters
            turn.streamed.stream = None
            await stream.aclose()

    async def _stream_failed(self, turn: _Turn, exc: Exception) -> None:
        """The input stream failed: if nothing was heard yet and a fallback exists, the turn
        is said sentence by sentence by it, from the first word."""
        assert turn.streamed is not None
        following = self.chain.after(self.chain.primary.name) if not turn.audio_ms else None
        if following is None:
            await self._report_failure(turn.turn_id, exc)
            return
        self.chain.switched(self.chain.primary.name, following.name, exc, self._meta(turn.turn_id))
        turn.link = following
        turn.streamed.fallen_back = True  # later deltas take the sentence path
        sentences = turn.splitter.feed(turn.streamed.text)
        if turn.streamed.finished and (rest := turn.splitter.flush()) is not None:
            sentences.append(rest)
        turn.streamed.characters = 0
        for sentence in sentences:
            await self._speak(turn, sentence)

    async def _send_audio(self, turn: _Turn, pcm: bytes, span: dict[str, str]) -> None:
        chunk_bytes = self.rate * 2 * MAX_CHUNK_MS // 1000
        for i in range(0, len(pcm), chunk_bytes):
            chunk = pcm[i : i + chunk_bytes]
            await self.bus.publish(
                self._subject(SessionChannel.AUDIO_OUT), chunk, self._meta(turn.turn_id, span)
            )
            FRAMES_OUT.inc()
            if not turn.first_audio_sent:
                await self._first_audio(turn)
            turn.audio_ms += len(chunk) / (self.rate * 2) * 1000
            # Stay at most MAX_AHEAD_MS ahead of playback: an answer cut short after a few
            # seconds should not have cost minutes of synthesis, nor gateway memory.
            ahead_ms = turn.audio_ms - (time.perf_counter() - turn.first_audio_at) * 1000
            if ahead_ms > MAX_AHEAD_MS:
                await asyncio.sleep((ahead_ms - MAX_AHEAD_MS) / 1000)

    async def _first_audio(self, turn: _Turn) -> None:
        turn.first_audio_sent = True
        turn.first_audio_at = time.perf_counter()
        assert turn.first_delta_at is not None
        first_byte_ms = (time.perf_counter() - turn.first_delta_at) * 1000

        async def report() -> None:
            FIRST_BYTE_SECONDS.observe(first_byte_ms / 1000)
            stages = LatencyStages(tts_first_byte_ms=first_byte_ms)
            latency = TurnLatency(turn_id=turn.turn_id, stages=stages)
            await self.bus.publish(
                self._subject(SessionChannel.STATUS), latency, self._meta(turn.turn_id)
            )
            # Off the audio path: the JetStream ack must not delay the next chunk.
            self.reporter.report(
                "latency.recorded",
                LatencyRecorded(
                    session_id=self.sid, at=datetime.now(UTC), turn_id=turn.turn_id, stages=stages
                ),
                self._meta(turn.turn_id),
            )

        await self._held.report(turn.turn_id, report)

    async def _end_turn(self, turn: _Turn) -> None:
        end = self._meta(turn.turn_id, AudioOutMeta(self.rate, end=True).headers())
        self._turns.pop(turn.turn_id, None)
        turn.close_span()
        await self.bus.publish(self._subject(SessionChannel.AUDIO_OUT), b"", end)
        if turn.characters:
            usage = UsageRecorded(
                session_id=self.sid,
                at=datetime.now(UTC),
                service="tts",
                provider=self.config.tts_provider.value,
                quantity=turn.characters,
                unit="characters",
            )

            async def report() -> None:
                self.reporter.report("usage.recorded", usage, self._meta(turn.turn_id))

            await self._held.report(turn.turn_id, report)

    async def _report_failure(self, turn_id: int, exc: BaseException) -> None:
        await self.failures.failed(
            "synthesis",
            exc,
            code="synthesis_failed",
            fallback="the answer could not be spoken; please try again",
            provider=self.config.tts_provider.value,
            meta=self._meta(turn_id),
        )


def open_session(runtime: Runtime) -> SessionFactory:
    """The factory the worker calls for each assigned session."""

    async def factory(assign: SessionAssign) -> SessionWork:
        provider = get_provider(assign.config.tts_provider)
        assign = await session_voice(runtime.bus, provider, assign)  # a clone: its provider id
        fallbacks = [p.value for p in assign.config.tts_fallback] or fallback_env("tts")
        return TtsSession(runtime.bus, assign, provider, fallbacks)

    return factory
