"""Semantic end of turn: when the user falls silent, Smart Turn v3.2 (a Whisper-tiny encoder
with a classifier, int8 ONNX) hears the utterance so far and says how likely it is that they
have finished; that sets how much silence ends the turn.

The model is loaded once per process and runs on a thread of its own, so a decision (tens of
ms) never blocks the event loop and concurrent sessions queue for it rather than crowd the
cores Whisper needs. Decisions are counted by outcome, and their latency is a histogram.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from prometheus_client import Counter

from parley_common.contracts.session import InterruptSensitivity
from parley_common.errors import ModelNotInstalledError
from parley_common.observability.metrics import latency_histogram
from parley_stt.end_of_turn_model import model_path
from parley_stt.log_mel import N_FRAMES, N_MELS, WINDOW_SAMPLES, log_mel_features
from parley_stt.onnx import single_thread_session
from parley_stt.settings import TurnSettings

__all__ = [
    "WINDOW_BYTES",
    "EndOfTurn",
    "Judge",
    "Outcome",
    "SmartTurn",
    "load_once",
    "outcome_of",
    "preload",
]

log = logging.getLogger(__name__)

WINDOW_BYTES = 2 * WINDOW_SAMPLES  # the model hears the last 8 s of PCM16
_INPUT = "input_features"
_OUTPUT = "logits"  # so named, but already a probability: the graph ends in a sigmoid


class Outcome(StrEnum):
    """What the end-of-turn model made of a pause."""

    COMPLETE = "complete"
    INCOMPLETE = "incomplete"
    UNSURE = "unsure"
    SHORT = "short"  # too little voice to judge (under STT_TURN_MIN_SPEECH_MS): not asked
    TIMEOUT = "timeout"  # no answer within STT_TURN_DECISION_TIMEOUT_MS
    FAILED = "failed"


DECISIONS = Counter(
    "parley_stt_end_of_turn_decisions_total",
    "Pauses judged by the end-of-turn model, by outcome (kind: complete, incomplete, unsure, "
    "short, timeout, failed)",
    ["kind"],
)
DECISION_SECONDS = latency_histogram(
    "parley_stt_end_of_turn_seconds",
    "Silence start to the end-of-turn model's answer (features, queue and inference)",
)


class Judge(Protocol):
    """What a session asks: how likely an utterance is to be complete."""

    async def judge(self, pcm: bytes) -> float:
        """Probability (0..1) that ``pcm`` (PCM16 LE mono 16 kHz) is a finished utterance."""
        ...


class SmartTurn:
    """Smart Turn v3.2 on onnxruntime: the probability that an utterance is complete."""

    def __init__(self, path: Path) -> None:
        # A decision is ~50-100 ms of one core; Whisper starts transcribing on the others at
        # the same moment.
        self._session: Any = single_thread_session(path, "the end-of-turn model")
        inputs = {i.name: list(i.shape)[1:] for i in self._session.get_inputs()}
        outputs = [o.name for o in self._session.get_outputs()]
        if inputs != {_INPUT: [N_MELS, N_FRAMES]} or outputs != [_OUTPUT]:
            raise ModelNotInstalledError(
                f"unexpected end-of-turn model signature: inputs {inputs}, outputs {outputs}"
            )
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="end-of-turn")

    def probability(self, pcm: bytes) -> float:
        """Probability (0..1) that the utterance ``pcm`` (PCM16 LE mono 16 kHz, its last
        8 s heard) is complete. Blocking: :meth:`judge` runs it off the loop."""
        samples = np.frombuffer(pcm[-WINDOW_BYTES:], dtype="<i2").astype(np.float32) / 32768.0
        features = log_mel_features(samples)[np.newaxis]
        (scores,) = self._session.run([_OUTPUT], {_INPUT: features})
        return float(np.asarray(scores).reshape(-1)[0])

    async def judge(self, pcm: bytes) -> float:
        """:meth:`probability` on the model's own thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.probability, pcm)


_model: SmartTurn | None = None
_missing: str | None = None  # why the model could not be loaded, once known
_lock = threading.Lock()


def load_once() -> SmartTurn | None:
    """The process's model, loaded by the first call (blocking: call it in a thread); None
    when it is not installed, which is logged once as an error naming the install command,
    after which turns end on the sensitivity's silence as they did without the model."""
    global _model, _missing
    with _lock:
        if _model is None and _missing is None:
            try:
                _model = SmartTurn(model_path())
            except ModelNotInstalledError as exc:
                _missing = exc.message
                log.error("semantic end of turn is off: %s", exc.message)
        return _model


def preload() -> None:
    """Load the model at worker start-up (blocking), so no session's first pause waits."""
    load_once()


def outcome_of(probability: float, settings: TurnSettings) -> Outcome:
    """What a probability of completion means under ``settings``' thresholds."""
    if probability >= settings.complete_above:
        return Outcome.COMPLETE
    if probability < settings.incomplete_below:
        return Outcome.INCOMPLETE
    return Outcome.UNSURE


class EndOfTurn:
    """One session's judge: the shared model, the thresholds and the session's sensitivity."""

    def __init__(
        self, model: Judge, settings: TurnSettings, sensitivity: InterruptSensitivity
    ) -> None:
        self.model = model
        self.settings = settings
        self.sensitivity = sensitivity

    @property
    def max_silence_ms(self) -> int:
        """The longest pause that can be part of a turn."""
        return self.settings.max_silence_ms(self.sensitivity)

    def silence_ms(self, outcome: Outcome) -> int:
        """The silence that ends a pause judged ``outcome``."""
        if outcome is Outcome.COMPLETE:
            return self.settings.complete_silence_ms
        if outcome is Outcome.INCOMPLETE:
            return self.max_silence_ms
        return self.sensitivity.silence_ms

    async def silence_after(self, utterance: bytes, speech_ms: int | None = None) -> int:
        """How much silence ends the pause that has just begun, given the utterance so far
        (PCM16 16 kHz, its trailing silence included) and, when known, how long the turn
        has been going (its first voice to this pause)."""
        started = time.perf_counter()
        probability: float | None = None
        if speech_ms is not None and speech_ms < self.settings.min_speech_ms:
            # A first word followed by a dip ("What | colour is the sky?") sounds finished
            # to the model (0.97), and its 200 ms would end the turn mid-question.
            DECISIONS.labels(Outcome.SHORT.value).inc()
            return self.silence_ms(Outcome.SHORT)
        try:
            async with asyncio.timeout(self.settings.decision_timeout_ms / 1000):
                probability = await self.model.judge(utterance)
            outcome = outcome_of(probability, self.settings)
            DECISION_SECONDS.observe(time.perf_counter() - started)
        except TimeoutError:
            outcome = Outcome.TIMEOUT
        except Exception:
            log.exception("the end-of-turn model failed; the sensitivity's silence applies")
            outcome = Outcome.FAILED
        DECISIONS.labels(outcome.value).inc()
        log.debug(
            "end of turn judged",
            extra={
                "outcome": outcome.value,
                "probability": probability,
                "ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        return self.silence_ms(outcome)
