"""The end-of-turn model and what its answers mean: the real Smart Turn v3.2 judges a finished
question and an unfinished sentence at the point where the session asks (when the VAD calls a
pause); thresholds, per-sensitivity waits, timeouts and failures set the pause's silence."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import numpy as np
import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError

from parley_common.contracts.session import InterruptSensitivity
from parley_stt.end_of_turn import EndOfTurn, Outcome, SmartTurn, load_once, outcome_of
from parley_stt.settings import TurnSettings
from parley_stt.turns import EnergyEdge, Phase, TurnDetector
from parley_stt.vad import FRAME_SAMPLES, SileroVad

FRAME_BYTES = 2 * FRAME_SAMPLES


def until_pause(pcm: bytes) -> bytes:
    """``pcm`` up to the frame where the VAD calls a pause, as the session hands it to the
    model (the utterance with the quiet frames that ended it)."""
    vad, detector, energy = SileroVad(), TurnDetector(500), EnergyEdge()
    audio = pcm + bytes(FRAME_BYTES * 20)
    for start in range(0, len(audio) - FRAME_BYTES + 1, FRAME_BYTES):
        frame = np.frombuffer(audio[start : start + FRAME_BYTES], "<i2").astype(np.float32)
        samples = frame / 32768.0
        offset = start // 32
        probability = vad.probability(samples)
        energy.push(offset, samples, speaking=probability >= detector.start_threshold)
        detector.push(offset, probability, energy.voiced_until_ms)
        if detector.phase is Phase.TRAILING:
            return audio[: start + FRAME_BYTES]
    raise AssertionError("the VAD never heard a pause")


@pytest.fixture(scope="module")
def model() -> SmartTurn:
    loaded = load_once()
    assert loaded is not None, "the end-of-turn model is not installed"
    return loaded


def decisions(outcome: Outcome) -> float:
    value = REGISTRY.get_sample_value(
        "parley_stt_end_of_turn_decisions_total", {"kind": outcome.value}
    )
    return value or 0.0


@pytest.mark.parametrize(
    "question", ["What is the weather like in Paris today?", "Hello there, how are you today?"]
)
async def test_a_finished_question_is_complete(
    model: SmartTurn, say: Callable[[str], bytes], question: str
) -> None:
    probability = await model.judge(until_pause(say(question)))
    assert outcome_of(probability, TurnSettings()) is Outcome.COMPLETE, probability


async def test_an_unfinished_sentence_is_incomplete(model: SmartTurn, unfinished: bytes) -> None:
    probability = await model.judge(until_pause(unfinished))
    assert outcome_of(probability, TurnSettings()) is Outcome.INCOMPLETE, probability


async def test_a_decision_takes_tens_of_milliseconds(model: SmartTurn, unfinished: bytes) -> None:
    utterance = until_pause(unfinished)
    await model.judge(utterance)  # warm
    took = []
    for _ in range(5):
        started = time.perf_counter()
        await model.judge(utterance)
        took.append(time.perf_counter() - started)
    # Tens of ms on an idle core; the bound leaves room for a machine shared with others.
    assert sorted(took)[2] < 0.5, took


def test_thresholds_split_complete_unsure_and_incomplete() -> None:
    settings = TurnSettings()
    assert outcome_of(0.7, settings) is Outcome.COMPLETE
    assert outcome_of(0.69, settings) is Outcome.UNSURE
    assert outcome_of(0.3, settings) is Outcome.UNSURE
    assert outcome_of(0.29, settings) is Outcome.INCOMPLETE


class Fixed:
    """A judge with a given answer, after a given delay, or a failure."""

    def __init__(self, probability: float, delay_s: float = 0.0, fails: bool = False) -> None:
        self.probability, self.delay_s, self.fails = probability, delay_s, fails

    async def judge(self, pcm: bytes) -> float:
        await asyncio.sleep(self.delay_s)
        if self.fails:
            raise RuntimeError("onnxruntime exploded")
        return self.probability


@pytest.mark.parametrize(
    ("sensitivity", "complete", "unsure", "incomplete"),
    [
        (InterruptSensitivity.HIGH, 200, 500, 1500),
        (InterruptSensitivity.MEDIUM, 200, 1000, 2000),
        (InterruptSensitivity.LOW, 200, 2000, 3000),
    ],
)
async def test_each_answer_sets_the_pause_silence(
    sensitivity: InterruptSensitivity, complete: int, unsure: int, incomplete: int
) -> None:
    settings = TurnSettings()
    for probability, expected in ((0.9, complete), (0.5, unsure), (0.1, incomplete)):
        judge = EndOfTurn(Fixed(probability), settings, sensitivity)
        assert await judge.silence_after(b"\0\0") == expected
    assert judge.max_silence_ms == incomplete


async def test_no_answer_in_time_or_a_failure_means_the_sensitivitys_silence() -> None:
    settings = TurnSettings(decision_timeout_ms=50)
    before = decisions(Outcome.TIMEOUT), decisions(Outcome.FAILED)
    slow = EndOfTurn(Fixed(0.9, delay_s=1.0), settings, InterruptSensitivity.HIGH)
    started = time.perf_counter()
    assert await slow.silence_after(b"\0\0") == 500
    assert time.perf_counter() - started < 0.5
    broken = EndOfTurn(Fixed(0.9, fails=True), settings, InterruptSensitivity.MEDIUM)
    assert await broken.silence_after(b"\0\0") == 1000
    assert (decisions(Outcome.TIMEOUT), decisions(Outcome.FAILED)) == (
        before[0] + 1,
        before[1] + 1,
    )


def test_the_waits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STT_TURN_MAX_SILENCE_HIGH_MS", "1800")
    monkeypatch.setenv("STT_TURN_COMPLETE_SILENCE_MS", "250")
    settings = TurnSettings()
    assert settings.max_silence_ms(InterruptSensitivity.HIGH) == 1800
    assert settings.complete_silence_ms == 250
    monkeypatch.setenv("STT_TURN_MAX_SILENCE_LOW_MS", "1000")  # shorter than low's 2 s
    with pytest.raises(ValidationError, match="STT_TURN_MAX_SILENCE_LOW_MS"):
        TurnSettings()
    monkeypatch.delenv("STT_TURN_MAX_SILENCE_LOW_MS")
    monkeypatch.setenv("STT_TURN_INCOMPLETE_BELOW", "0.8")
    with pytest.raises(ValidationError, match="STT_TURN_INCOMPLETE_BELOW"):
        TurnSettings()
