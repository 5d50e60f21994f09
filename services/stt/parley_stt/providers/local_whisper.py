"""The offline default: Whisper base through faster-whisper (CTranslate2, int8, on the CPU).

One model per process, shared by every stream, and one inference lane: concurrent utterances
queue instead of fighting over the cores, finals go before partials (which run only when no
final is queued, running or just done), and the event loop never waits on the model. The
encoder sees each utterance plus 3 s of padding, not a 30 s window (``whisper_utterance``).
"""

from __future__ import annotations

import asyncio
import functools
import math
import os
import re
import threading
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from parley_common.contracts.bus import Word
from parley_common.errors import ModelNotInstalledError
from parley_common.languages import supported_language
from parley_common.settings import positive_int_env
from parley_stt.models import whisper_model_dir
from parley_stt.providers.base import PartialSink, SttResult
from parley_stt.providers.inference_lane import InferenceLane
from parley_stt.providers.languages import likeliest_supported

__all__ = [
    "ANSWER_QUIET_S",
    "SAMPLE_RATE",
    "THREADS_ENV",
    "LocalWhisperProvider",
    "LocalWhisperStream",
    "transcribe",
]

SAMPLE_RATE = 16_000
THREADS_ENV = "PARLEY_STT_THREADS"
_DEFAULT_THREADS = 2
# Under 100 ms there is no word to find, and Whisper tends to invent one.
_MIN_BYTES = 2 * SAMPLE_RATE // 10
# Once a final is out, the dialogue model and the TTS compute the answer and its first audio
# on the same cores for about a second (docs/benchmarks.md): partials wait until then.
ANSWER_QUIET_S = 1.0
# Speech gave Whisper at most ~9 tokens a second (timestamps included) on the bench's voice
# spoken 25 % faster; a decode stuck in a loop stops here instead of at 448 tokens, seconds
# later, and its retry at a higher temperature starts sooner.
_TOKENS_PER_SECOND = 12
_TOKENS_MIN = 16


@dataclass(frozen=True, slots=True)
class _Pass:
    """faster-whisper settings for one kind of transcription."""

    final: bool
    beam_size: int
    temperature: tuple[float, ...]


# Partials only need to look alive: greedy, no word timings, no retries.
_INTERIM = _Pass(final=False, beam_size=1, temperature=(0.0,))
# Beam sizes 2-3 gave the same transcripts on our samples for 15-40% more time. One retry at a
# higher temperature can rescue a decode stuck in a repetition loop; more would make the
# worst case several times the usual latency.
_FINAL = _Pass(final=True, beam_size=1, temperature=(0.0, 0.4))

_model: Any = None
_model_lock = threading.Lock()
# One thread: each transcription already uses every core via CTranslate2's own threads.
_lane = InferenceLane("parley-whisper", quiet_after_critical_s=ANSWER_QUIET_S)


def _threads() -> int:
    return positive_int_env(THREADS_ENV, _DEFAULT_THREADS)


def _load_model() -> Any:
    """The process's WhisperModel, loaded on first use (about a second)."""
    global _model
    with _model_lock:
        if _model is None:
            # The model is always given as a local directory, so nothing should reach for the
            # Hugging Face hub; this makes sure nothing does.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            try:
                from parley_stt.providers.whisper_utterance import UtteranceWhisperModel
            except ImportError as exc:
                raise ModelNotInstalledError(
                    "local STT needs faster-whisper: pip install 'parley-stt[local]'"
                ) from exc
            _model = UtteranceWhisperModel(
                str(whisper_model_dir()),
                device="cpu",
                compute_type="int8",
                cpu_threads=_threads(),
                local_files_only=True,
            )
        return _model


def _transcribe(audio: npt.NDArray[np.float32], language: str | None, how: _Pass) -> SttResult:
    """Run one transcription with the process's model; called on the inference lane."""
    return transcribe(_load_model(), audio, language, final=how.final)


def transcribe(
    model: Any, audio: npt.NDArray[np.float32], language: str | None, *, final: bool
) -> SttResult:
    """A final (with word timings) or partial transcript of ``audio`` (float32, 16 kHz) by a
    faster-whisper ``model``; blocks for as long as the model takes."""
    how = _FINAL if final else _INTERIM
    seconds = min(len(audio) / SAMPLE_RATE, 30.0)  # faster-whisper's limit is per window
    segments, info = model.transcribe(
        audio,
        language=language,
        beam_size=how.beam_size,
        temperature=how.temperature,
        condition_on_previous_text=False,
        # Timestamp tokens for partials too: with only the utterance encoded, text-only
        # decoding loops on audio cut mid-word (a partial's) far more often. Word timings
        # need them anyway: without, faster-whisper resumes decoding after the last word and
        # hallucinates into the padding ("Bye. Bye.").
        without_timestamps=False,
        word_timestamps=how.final,
        max_new_tokens=_TOKENS_MIN + math.ceil(_TOKENS_PER_SECOND * seconds),
        # The service runs its own VAD on the stream; a second pass would only cost time.
        vad_filter=False,
    )
    if language is None and supported_language(info.language) is None:
        # Detected as none of the nine (robotic or accented speech read as Latin, say): the
        # likeliest of the nine is decoded instead, at the cost of a second encoder pass.
        likeliest = likeliest_supported(info.all_language_probs)
        if likeliest is not None:
            return transcribe(model, audio, likeliest, final=final)
    segments = heard(segments, len(audio) / SAMPLE_RATE)  # decoding happens lazily, here
    text = " ".join(s.text.strip() for s in segments if s.text.strip())
    tokens = sum(len(s.tokens) for s in segments)
    confidence = None
    if text and tokens:
        # Geometric mean of the token probabilities over the whole utterance.
        mean_logprob = sum(s.avg_logprob * len(s.tokens) for s in segments) / tokens
        confidence = min(1.0, max(0.0, math.exp(mean_logprob)))
    words = tuple(
        Word(word=w.word.strip(), start=w.start, end=w.end, confidence=w.probability)
        for s in segments
        for w in s.words or ()
        if w.word.strip()
    )
    return SttResult(
        text=text,
        is_final=how.final,
        confidence=confidence,
        language=language or info.language,
        words=words,
    )


def _spoken(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def heard(segments: Iterable[Any], duration_s: float) -> list[Any]:
    """The segments without Whisper's loop: after the speech ends (a trailing silence, the
    encoder's padding) it may say again all or the start of what it just said, or invent a
    closing phrase. A segment that starts after the audio's last sample, or only repeats the
    one before it, is dropped."""
    kept: list[Any] = []
    for segment in segments:
        if segment.start >= duration_s:
            continue
        text = _spoken(segment.text)
        if kept and text and _spoken(kept[-1].text).startswith(text):
            continue
        kept.append(segment)
    return kept


def _whisper_language(language: str | None) -> str | None:
    # Sessions may carry a locale such as "en-US"; Whisper knows only the language part.
    if language is None:
        return None
    return language.replace("_", "-").split("-")[0].lower()


@dataclass(slots=True)
class _Job:
    """One queued or running transcription, shared by every caller that wants it. Its result
    is None when it was a partial the lane did not run (a final had the cores)."""

    size: int  # bytes of audio it covers
    work: Future[SttResult | None]
    result: asyncio.Future[SttResult | None]
    waiters: int = 0

    def usable_for(self, size: int) -> bool:
        """Whether this job's (eventual) result answers a request for ``size`` bytes."""
        if self.size != size or self.result.cancelled():
            return False
        if not self.result.done():
            return True
        # A failure is retried rather than repeated forever, a skipped partial asked again.
        return self.result.exception() is None and self.result.result() is not None

    async def wait(self) -> SttResult | None:
        """The result; a caller giving up does not cancel it for the other callers."""
        self.waiters += 1
        try:
            return await asyncio.shield(self.result)
        finally:
            self.waiters -= 1
            if self.waiters == 0:
                # Nobody wants it any more (e.g. a speculative final overtaken by more speech):
                # drop it if it is still queued, so it does not delay the next one. A job
                # already running cannot be stopped; it finishes and stays cached.
                self.work.cancel()


class LocalWhisperStream:
    """One utterance: buffers PCM16 16 kHz audio and transcribes it on demand."""

    def __init__(self, language: str | None) -> None:
        self._language = _whisper_language(language)
        self._pcm = bytearray()
        # The latest job of each kind; a finished one doubles as the cached result.
        self._interim: _Job | None = None
        self._final: _Job | None = None

    async def feed(self, pcm: bytes) -> None:
        """Append audio to the utterance."""
        self._pcm += pcm

    async def interim(self) -> SttResult | None:
        """A partial transcript (cheap settings), or None before there is enough audio."""
        if len(self._pcm) < _MIN_BYTES:
            return None
        job = self._interim
        # A partial still running is awaited even if it covers less audio, so one stream never
        # has more than one partial waiting for the cores.
        running = job is not None and not job.result.done()
        if job is None or not (running or job.usable_for(len(self._pcm))):
            job = self._interim = self._start(_INTERIM)
        return await job.wait()

    async def finish(self) -> SttResult:
        """The final transcript with word timings; asking again without new audio (or while
        the same request runs) returns the same result instead of transcribing twice."""
        if len(self._pcm) < _MIN_BYTES:
            return SttResult(text="", is_final=True, language=self._language)
        job = self._final
        if job is None or not job.usable_for(len(self._pcm)):
            job = self._final = self._start(_FINAL)
        result = await job.wait()
        assert result is not None  # only partials are ever skipped
        return result

    async def aclose(self) -> None:
        """Drop the audio and the cached results (jobs nobody awaits are already dropped)."""
        self._interim = self._final = None
        self._pcm = bytearray()

    def _start(self, how: _Pass) -> _Job:
        size = len(self._pcm)
        # Copied now: feed() may append while the job waits for the inference thread.
        audio = np.frombuffer(self._pcm, dtype="<i2", count=size // 2).astype(np.float32)
        audio /= 32768.0
        run = functools.partial(_transcribe, audio, self._language, how)
        work: Future[SttResult | None] = _lane.critical(run) if how.final else _lane.background(run)
        return _Job(size=size, work=work, result=asyncio.wrap_future(work))


class LocalWhisperProvider:
    """Whisper base on the CPU via faster-whisper, fully offline."""

    name = "local"
    pushes_partials = False

    async def open(
        self,
        language: str | None,
        *,
        model: str | None = None,
        on_partial: PartialSink | None = None,
    ) -> LocalWhisperStream:
        """Start a new utterance; ``language`` None means detect it (costs an extra pass).
        There is one local model, so ``model`` is ignored; partials are only made when
        polled, so ``on_partial`` is never called."""
        return LocalWhisperStream(language)

    async def warm_up(self) -> None:
        """Load the model now (off the event loop) so the first utterance does not pay it."""
        await asyncio.wrap_future(_lane.critical(_load_model))
