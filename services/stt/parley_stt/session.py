"""One session on an STT worker: VAD on every frame, turn detection (the end-of-turn model
judging each pause), partial and final transcripts, with the final transcription started
speculatively when the user falls silent."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np

from parley_common.bus import Bus, MessageMeta, Received
from parley_common.bus.audio import INPUT_SAMPLE_RATE, AudioInMeta
from parley_common.contracts import subjects
from parley_common.contracts.bus import (
    Emotion,
    SessionAssign,
    SpeechStarted,
    SpeechStopped,
    Transcript,
)
from parley_common.contracts.events import UsageRecorded
from parley_common.contracts.session import SttProvider as SttName
from parley_common.contracts.subjects import SessionChannel
from parley_common.fallback import FallbackChain, Link, deadline_env, fallback_env
from parley_common.observability import tracing
from parley_common.observability.metrics import AUDIO_FRAMES, DROPPED_FRAMES, latency_histogram
from parley_common.reporting import DurableReporter, FailureReporter
from parley_common.runtime import Runtime
from parley_common.workers import SessionFactory, SessionWork
from parley_stt.emotion import EmotionDetector, prepare_emotion
from parley_stt.end_of_turn import WINDOW_BYTES, EndOfTurn, load_once
from parley_stt.providers.base import PartialSink, SttProvider, SttResult, SttStream
from parley_stt.providers.registry import get_provider
from parley_stt.settings import TurnSettings
from parley_stt.speculation import Offered, SpeculativeTranscript
from parley_stt.turns import FRAME_MS, EnergyEdge, Phase, TurnDetector, TurnEvent
from parley_stt.vad import FRAME_SAMPLES, SileroVad
from parley_stt.vad_batch import BatchedVad, FrameVad, as_frame_vad

log = logging.getLogger(__name__)

FRAME_BYTES = 1024  # 512 samples of PCM16
PREROLL_FRAMES = 10  # ~320 ms kept before onset so that the first syllable is not clipped
# A local interim costs ~0.15-0.2 s of the cores (only the utterance is encoded) and never
# runs beside a final (the provider's inference lane); once a second keeps the text live.
PARTIAL_EVERY_MS = 1000
# One user turn is at most this long: then it is ended and answered, and the user is told.
# It bounds the utterance a batch provider buffers and re-transcribes for partials.
MAX_TURN_MS = 30_000
# How long after the end of a turn its final may take when a fallback could take over.
FINAL_DEADLINE_S = deadline_env("STT_FINAL_DEADLINE_S", 3.0)

FRAMES_IN = AUDIO_FRAMES.labels("stt", "in")
FINALIZE_SECONDS = latency_histogram(
    "parley_stt_final_seconds", "End of turn to final transcript published"
)


class SttSession:
    """Turns a session's audio into speech events and transcripts."""

    def __init__(
        self,
        bus: Bus,
        assign: SessionAssign,
        provider: SttProvider,
        vad: SileroVad | FrameVad,
        fallbacks: Sequence[str] = (),
        end_of_turn: EndOfTurn | None = None,
    ) -> None:
        self.bus = bus
        self.sid = assign.session_id
        self.config = assign.config
        self.provider = provider
        self.vad = as_frame_vad(vad)
        # Without a judge (the session turned it off, or the model is not installed) the
        # sensitivity's silence alone ends a turn.
        self.end_of_turn = end_of_turn
        self.detector = TurnDetector(
            assign.config.interrupt_sensitivity.silence_ms,
            max_silence_ms=None if end_of_turn is None else end_of_turn.max_silence_ms,
        )
        self._energy = EnergyEdge()
        self.emotion = EmotionDetector() if assign.config.detect_emotion else None
        self.reporter = DurableReporter(bus, "stt")
        self.failures = FailureReporter(bus, self.reporter, self.sid, "stt")
        self.chain = FallbackChain(
            "stt",
            Link(assign.config.stt_provider.value, provider),
            fallbacks,
            lambda name: get_provider(SttName(name)),
            self.reporter,
            self.sid,
            FINAL_DEADLINE_S,
        )
        self.ready = asyncio.Event()  # set once the session listens to its audio
        self._pending = bytearray()
        # Position of the next VAD frame in the session's input audio, in samples. The
        # gateway owns the clock (each audio message says where it starts), so a worker
        # taking the session over continues it.
        self._next_sample = 0
        self._preroll: deque[bytes] = deque(maxlen=PREROLL_FRAMES)
        self._held: list[bytes] = []  # trailing silence, fed only if speech resumes
        self._stream: SttStream | None = None
        self._stream_ms = 0
        self._audio = bytearray()  # the utterance so far, for a fallback provider
        self._partial_at_ms = 0
        self._partial: asyncio.Task[None] | None = None
        self._speculative: asyncio.Task[object] | None = None
        self.speculation = SpeculativeTranscript(
            bus, self.sid, self._meta, assign.config.speculative_answer
        )
        self._decision: asyncio.Task[None] | None = None  # the current pause's judgement
        self._finals: asyncio.Task[None] | None = None  # chained so finals stay in order
        self._push_to_talk = False
        self._utterance = 0  # counts the utterances, so late partials of old ones are dropped
        self._seq = 0

    def _meta(self) -> MessageMeta:
        self._seq += 1
        return MessageMeta(session_id=self.sid, seq=self._seq)

    def _subject(self, channel: SessionChannel) -> str:
        return subjects.session(self.sid, channel)

    @property
    def _offset_ms(self) -> int:
        return self._next_sample * 1000 // INPUT_SAMPLE_RATE

    def busy(self) -> bool:
        """Whether the user is mid-utterance (a drain lets the turn finish)."""
        return self._stream is not None

    async def run(self) -> None:
        """Process the session until cancelled."""
        sub = await self.bus.subscribe(self._subject(SessionChannel.AUDIO_IN), self._on_audio)
        await self.bus.flush()
        self.ready.set()
        try:
            await self.reporter.run()
        finally:
            await sub.unsubscribe()
            for task in (self._partial, self._speculative, self._decision, self._finals):
                if task is not None:
                    task.cancel()
            if self._stream is not None:
                await self._stream.aclose()

    async def _push_to_talk_changed(self, meta: AudioInMeta) -> None:
        self._sync_clock(meta.offset)
        # The marker's own position: audio still pending (a partial frame) came before it.
        at_sample = self._next_sample + len(self._pending) // 2
        at_ms = at_sample * 1000 // INPUT_SAMPLE_RATE
        if meta.push_to_talk == "start":
            self._push_to_talk = True
            await self._handle(self.detector.force_start(at_ms), b"")
            return
        self._push_to_talk = False
        # The frames before the release belong to the turn, even a partial last one.
        if self._pending:
            self._pending += bytes(FRAME_BYTES - len(self._pending))
            await self._on_frame(bytes(self._pending))
            self._pending.clear()
        # The padding is not audio the user sent: the clock goes back to the release point,
        # so later offsets (and the gateway's wall-clock mapping) do not drift.
        self._next_sample = at_sample
        await self._handle(self.detector.force_end(at_ms), b"")

    def _sync_clock(self, offset: int | None) -> None:
        if offset is None:
            return  # the publisher keeps no clock: count on
        expected = self._next_sample + len(self._pending) // 2
        if offset != expected:
            # A new worker's first message, frames lost, or push-to-talk padding: the
            # gateway's clock wins; a partial frame from before the jump is dropped.
            self._pending.clear()
            self._next_sample = offset

    async def _on_audio(self, msg: Received) -> None:
        try:
            meta = AudioInMeta.parse(msg.meta.extra)
        except ValueError as exc:
            log.warning("bad audio message dropped", extra={"error": str(exc)})
            DROPPED_FRAMES.labels("stt", "malformed").inc()
            return
        if meta.push_to_talk is not None:
            await self._push_to_talk_changed(meta)
            return
        self._sync_clock(meta.offset)
        self._pending += msg.data
        while len(self._pending) >= FRAME_BYTES:
            frame = bytes(self._pending[:FRAME_BYTES])
            del self._pending[:FRAME_BYTES]
            FRAMES_IN.inc()
            await self._on_frame(frame)

    async def _on_frame(self, frame: bytes) -> None:
        offset = self._offset_ms
        self._next_sample += FRAME_SAMPLES
        samples = np.frombuffer(frame, dtype=np.int16).astype(np.float32) / 32768.0
        probability = await self.vad.probability(samples)
        if self._push_to_talk:
            probability = 1.0  # the button, not the VAD, decides while it is held
        self._energy.push(offset, samples, speaking=probability >= self.detector.start_threshold)
        events = self.detector.push(offset, probability, self._energy.voiced_until_ms)
        await self._handle(events, frame)
        if self._stream is not None and self._stream_ms >= MAX_TURN_MS:
            await self._end_long_turn()

    async def _end_long_turn(self) -> None:
        await self._handle(self.detector.force_end(self._offset_ms), b"")
        limit_s = MAX_TURN_MS // 1000
        await self.failures.tell(
            "turn_limit_reached",
            f"you spoke for over {limit_s} s, so Parley is answering what it heard so far",
            provider=self.config.stt_provider.value,
            meta=self._meta(),
            severity="warning",
        )

    async def _handle(self, events: list[TurnEvent], frame: bytes) -> None:
        for event in events:
            if event.kind == "speech_started":
                await self._speech_started(event)
            elif event.kind == "speech_stopped":
                self._judge_pause(frame, event.speech_ms)
                await self._publish_speech(
                    SpeechStopped(at_ms=event.at_ms, duration_ms=event.speech_ms)
                )
                self._start_speculation()
            else:
                self._end_of_turn()
        if not frame:
            return
        phase = self.detector.phase
        if phase is Phase.SPEAKING and self._stream is not None:
            await self._feed(frame)
        elif phase is Phase.TRAILING:
            self._held.append(frame)
        elif phase is Phase.IDLE:
            self._preroll.append(frame)

    async def _speech_started(self, event: TurnEvent) -> None:
        await self._publish_speech(SpeechStarted(at_ms=event.at_ms))
        if self._stream is None:
            self._energy.new_utterance()
            self._utterance += 1
            pushed = self._partial_sink(self._utterance) if self.provider.pushes_partials else None
            self._stream = await self.provider.open(
                self.config.language, model=self.config.stt_model, on_partial=pushed
            )
            self._stream_ms = 0
            self._audio = bytearray()
            self._partial_at_ms = 0
            backlog, self._held = list(self._preroll), []
            self._preroll.clear()
        else:  # speech resumed within the turn: the pause belongs to the utterance
            backlog, self._held = self._held, []
            if self._speculative is not None:
                self._speculative.cancel()
                self._speculative = None
            self._cancel_decision()
            await self.speculation.cancel()
        for frame in backlog:
            await self._feed(frame)

    async def _feed(self, frame: bytes) -> None:
        assert self._stream is not None
        await self._stream.feed(frame)
        self._audio += frame  # kept for a fallback provider, bounded by MAX_TURN_MS
        self._stream_ms += FRAME_MS
        if self.provider.pushes_partials:
            return  # partials arrive through the sink, as the provider makes them
        due = self._stream_ms - self._partial_at_ms >= PARTIAL_EVERY_MS
        if due and (self._partial is None or self._partial.done()):
            self._partial_at_ms = self._stream_ms
            self._partial = asyncio.create_task(self._publish_partial(self._stream))

    def _judge_pause(self, frame: bytes, speech_ms: int) -> None:
        """Ask the end-of-turn model about the pause that has just begun, after
        ``speech_ms`` of the turn (not when a push-to-talk release has ended it at once)."""
        if self.end_of_turn is None or self.detector.phase is not Phase.TRAILING:
            return
        self._cancel_decision()
        # The utterance so far, with the quiet frames that made the VAD call it a pause.
        utterance = bytes(self._audio[-WINDOW_BYTES:]) + frame
        pause = self.detector.pause
        self._decision = asyncio.create_task(self._decide(pause, utterance, speech_ms))

    async def _decide(self, pause: int, utterance: bytes, speech_ms: int) -> None:
        assert self.end_of_turn is not None
        silence_ms = await self.end_of_turn.silence_after(utterance, speech_ms)
        self._decision = None  # answered: from here on there is nothing to cancel
        await self._handle(self.detector.decide(pause, silence_ms), b"")

    def _cancel_decision(self) -> None:
        if self._decision is not None:
            self._decision.cancel()
            self._decision = None

    def _start_speculation(self) -> None:
        # The user may be done: transcribe now, while the silence window runs, so that the
        # final is (nearly) ready when the turn is confirmed. The stream caches the result.
        if self._partial is not None:
            self._partial.cancel()  # a queued interim would only delay the final
        if self._stream is not None and self._speculative is None:
            pause = self.detector.pause
            self._speculative = asyncio.create_task(self._speculate(self._stream, pause))

    async def _speculate(self, stream: SttStream, pause: int) -> SttResult:
        """The final transcription of the pause ``pause``, offered to the dialogue as a
        speculative transcript if the pause is still going on when it is ready."""
        result = await stream.finish()

        def pausing() -> bool:
            trailing = self.detector.phase is Phase.TRAILING and self.detector.pause == pause
            return trailing and stream is self._stream

        if not pausing():
            return result
        if not (self.speculation.enabled and result.text.strip()):
            # The pause's words as a partial, even none: the gateway judging speech over the
            # assistant decides on them at once instead of waiting for the turn's final.
            await self._partial_result(result, pause=True)
            return result
        audio = bytes(self._audio)
        emotion = None
        if self.emotion is not None:  # told to the answer; learnt from the turn's final only
            emotion = await self.emotion.judge(audio, result.text, result.words, learn=False)
        if pausing():
            await self.speculation.publish(self._final_transcript(result, audio, None, emotion))
        return result

    def _end_of_turn(self) -> None:
        stream, speculative = self._stream, self._speculative
        self._stream, self._speculative, self._held = None, None, []
        self._cancel_decision()
        offered = self.speculation.take()
        if stream is None:
            if offered is not None:
                offered[1].end()
            return
        previous = self._finals
        ended_at = time.perf_counter()
        audio, self._audio = bytes(self._audio), bytearray()
        self._finals = asyncio.create_task(
            self._publish_final(stream, speculative, previous, ended_at, audio, offered)
        )

    async def _publish_final(
        self,
        stream: SttStream,
        speculative: asyncio.Task[object] | None,
        previous: asyncio.Task[None] | None,
        ended_at: float,
        audio: bytes,
        offered: Offered | None = None,
    ) -> None:
        # The user stopped speaking: a turn, and its trace, begin here (or at the
        # speculative transcript of its last pause, whose answer is the turn's).
        turn = offered[1] if offered else tracing.start_turn("stt", self.sid)
        try:
            with tracing.child_span("stt.final", tracing.traceparent_of(turn), "stt") as span:
                found = await self._final_result(stream, speculative, audio)
                if found is not None:
                    span.set_attribute("parley.provider", found[1].name)
                    span.set_attribute("parley.model", self.config.stt_model or "default")
            if previous is not None:
                await asyncio.gather(previous, return_exceptions=True)
            if found is None or not found[0].text.strip():
                if offered is not None:
                    await self.speculation.withdraw()  # no final will commit its answer
                if found is None:
                    return
            await self._final_found(*found, ended_at, audio, tracing.traceparent_of(turn))
        finally:
            turn.end()

    async def _final_result(
        self, stream: SttStream, speculative: asyncio.Task[object] | None, audio: bytes
    ) -> tuple[SttResult, Link[SttProvider]] | None:
        """The utterance's final transcript and the provider that gave it (a fallback's
        when the primary failed); None when every provider failed (the user is told)."""
        link = self.chain.primary
        result: SttResult | None = None
        try:
            async with asyncio.timeout(self.chain.deadline(link.name)):
                if speculative is not None:
                    await asyncio.gather(speculative, return_exceptions=True)
                result = await stream.finish()
        except Exception as exc:
            error: Exception = exc
        finally:
            await stream.aclose()
        while result is None:
            following = self.chain.after(link.name)
            if following is None:
                await self.failures.failed(
                    "transcription",
                    error,
                    code="transcription_failed",
                    fallback="what you said could not be transcribed",
                    provider=link.name,
                    meta=self._meta(),
                )
                return None
            # The rest of the turn goes to the next provider, with the utterance's audio.
            self.chain.switched(link.name, following.name, error, self._meta())
            link = following
            try:
                async with asyncio.timeout(self.chain.deadline(link.name)):
                    result = await self._transcribe(link.provider, audio)
            except Exception as exc:
                error = exc
        return result, link

    async def _final_found(
        self,
        result: SttResult,
        link: Link[SttProvider],
        ended_at: float,
        audio: bytes,
        traceparent: str,
    ) -> None:
        audio_ms = len(audio) * 1000 // (2 * INPUT_SAMPLE_RATE)
        finalize_s = time.perf_counter() - ended_at
        FINALIZE_SECONDS.observe(finalize_s)
        if not result.text.strip():
            return  # noise, a cough: nothing to answer
        emotion = None
        if self.emotion is not None:
            emotion = await self.emotion.judge(audio, result.text, result.words)
        transcript = self._final_transcript(result, audio, finalize_s * 1000, emotion)
        meta = replace(self._meta(), traceparent=traceparent)
        await self.bus.publish(self._subject(SessionChannel.TRANSCRIPT), transcript, meta)
        usage = UsageRecorded(
            session_id=self.sid,
            at=datetime.now(UTC),
            service="stt",
            provider=link.name,
            model=self.config.stt_model if link is self.chain.primary else None,
            quantity=audio_ms / 1000,
            unit="audio_seconds",
        )
        self.reporter.report("usage.recorded", usage, self._meta())

    def _final_transcript(
        self, result: SttResult, audio: bytes, finalize_ms: float | None, emotion: Emotion | None
    ) -> Transcript:
        return Transcript(
            text=result.text.strip(),
            is_final=True,
            confidence=result.confidence,
            language=result.language,
            words=result.words,
            audio_ms=len(audio) * 1000 // (2 * INPUT_SAMPLE_RATE),
            finalize_ms=finalize_ms,
            emotion=emotion,
        )

    async def _transcribe(self, provider: SttProvider, audio: bytes) -> SttResult:
        """The final transcript of a whole utterance by ``provider`` (a fallback)."""
        stream = await provider.open(self.config.language)
        try:
            second = 2 * INPUT_SAMPLE_RATE
            for start in range(0, len(audio), second):
                await stream.feed(audio[start : start + second])
            return await stream.finish()
        finally:
            await stream.aclose()

    async def _publish_partial(self, stream: SttStream) -> None:
        try:
            result = await stream.interim()
        except Exception:
            log.exception("partial transcription failed")
            return
        if result is not None and stream is self._stream:
            await self._partial_result(result)

    def _partial_sink(self, utterance: int) -> PartialSink:
        async def publish(result: SttResult) -> None:
            # Only partials of the utterance being spoken: a late one of an ended turn is old.
            if utterance == self._utterance and self._stream is not None:
                await self._partial_result(result)

        return publish

    async def _partial_result(self, result: SttResult, pause: bool = False) -> None:
        """Publish ``result`` as a partial; an empty one only for a ``pause`` (the user fell
        silent and the recogniser heard no words: a cough, a hum)."""
        if not (pause or result.text.strip()):
            return
        partial = Transcript(
            text=result.text.strip(),
            is_final=False,
            confidence=result.confidence,
            language=result.language,
            words=result.words,
            audio_ms=self._stream_ms,
        )
        await self.bus.publish(self._subject(SessionChannel.TRANSCRIPT), partial, self._meta())

    async def _publish_speech(self, event: SpeechStarted | SpeechStopped) -> None:
        await self.bus.publish(self._subject(SessionChannel.SPEECH), event, self._meta())


def open_session(runtime: Runtime) -> SessionFactory:
    """The factory the worker calls for each assigned session."""
    turn_settings = TurnSettings()
    vad_batch = BatchedVad()  # one ONNX call per tick for all of this worker's sessions

    async def factory(assign: SessionAssign) -> SessionWork:
        provider = get_provider(assign.config.stt_provider)
        # Off the loop: the first VAD of a process loads the model (the worker preloads it at
        # start-up, so this is normally instant). So for the end-of-turn model.
        vad = await asyncio.to_thread(vad_batch.stream)
        judge = None
        if assign.config.semantic_turn:
            model = await asyncio.to_thread(load_once)
            if model is not None:
                sensitivity = assign.config.interrupt_sensitivity
                judge = EndOfTurn(model, turn_settings, sensitivity)
        if assign.config.detect_emotion:
            await prepare_emotion()
        fallbacks = [p.value for p in assign.config.stt_fallback] or fallback_env("stt")
        return SttSession(runtime.bus, assign, provider, vad, fallbacks, judge)

    return factory
