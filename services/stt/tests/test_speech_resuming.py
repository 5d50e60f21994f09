"""A short dip after the first word is not the end of the turn: the detector does not end a
decided pause on a frame where the VAD hears the voice coming back, and a pause after too
little voice for the end-of-turn model gets the sensitivity's silence, not its 200 ms.

The case is Piper's "What colour is the sky on a clear day?": the model calls "What" finished
(0.97), and the dip after it, with Silero's slow rise on "colour", made the bench's turn
"What?" (with the speculative answer on or off)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from bench.audio import silence
from parley_common.contracts.session import InterruptSensitivity
from parley_stt.end_of_turn import EndOfTurn, Outcome
from parley_stt.settings import TurnSettings
from parley_stt.turns import FRAME_MS, EnergyEdge, Phase, TurnDetector
from parley_stt.vad import FRAME_SAMPLES, SileroVad

QUESTION = "What colour is the sky on a clear day?"
COMPLETE_MS = TurnSettings().complete_silence_ms
QUIET, RISING, LOUD = 0.05, 0.45, 0.9  # RISING: between the stop (0.35) and start (0.5)


def _detector() -> TurnDetector:
    return TurnDetector(500, max_silence_ms=1500)


def _push(detector: TurnDetector, start: int, probs: list[float]) -> list[str]:
    return [e.kind for i, p in enumerate(probs) for e in detector.push((start + i) * FRAME_MS, p)]


def _paused(detector: TurnDetector) -> int:
    """Speech for 10 frames, then the 3 quiet frames of the hangover; the next frame's index."""
    assert _push(detector, 0, [LOUD] * 10 + [QUIET] * 3) == ["speech_started", "speech_stopped"]
    return 13


def test_a_complete_pause_does_not_end_on_the_frame_the_voice_comes_back_in() -> None:
    detector = _detector()
    at = _paused(detector)
    assert detector.decide(detector.pause, COMPLETE_MS) == []  # 96 ms heard
    # Three more quiet frames (192 ms), then Silero rising on the next word: counted as
    # silence, that frame's 224 ms would have ended the turn.
    events = _push(detector, at, [QUIET] * 3 + [RISING, LOUD])
    assert events == ["speech_started"]
    assert detector.phase is Phase.SPEAKING


def test_a_decision_arriving_on_a_rising_frame_waits_for_a_quiet_one() -> None:
    detector = _detector()
    at = _paused(detector)
    assert _push(detector, at, [QUIET, QUIET, QUIET, RISING]) == []  # 224 ms, undecided
    assert detector.decide(detector.pause, COMPLETE_MS) == []
    # The voice did not come: the next quiet frame ends the turn (one frame later).
    assert _push(detector, at + 4, [QUIET]) == ["end_of_turn"]


def test_a_voice_hovering_between_the_thresholds_ends_the_pause_at_the_longest_wait() -> None:
    detector = _detector()
    at = _paused(detector)
    detector.decide(detector.pause, COMPLETE_MS)
    # The pause's silence began with the hangover's 3 frames: the longest wait ends it.
    hovering = -(-1500 // FRAME_MS) - 3
    assert _push(detector, at, [RISING] * (hovering - 1)) == []
    assert _push(detector, at + hovering - 1, [RISING]) == ["end_of_turn"]


def test_without_a_judge_the_sensitivity_silence_is_unchanged() -> None:
    detector = TurnDetector(500)
    at = _paused(detector)
    frames = -(-500 // FRAME_MS) - 3  # the hangover's 96 ms counted already
    assert _push(detector, at, [QUIET] * (frames - 1) + [RISING]) == ["end_of_turn"]


class Counting:
    """A judge that says "finished" and counts how often it was asked."""

    def __init__(self) -> None:
        self.asked = 0

    async def judge(self, pcm: bytes) -> float:
        self.asked += 1
        return 0.97


async def test_too_little_voice_is_not_judged_and_gets_the_sensitivity_silence() -> None:
    settings = TurnSettings()
    model = Counting()
    judge = EndOfTurn(model, settings, InterruptSensitivity.HIGH)
    assert await judge.silence_after(b"\0\0", speech_ms=96) == 500
    assert model.asked == 0
    assert await judge.silence_after(b"\0\0", speech_ms=settings.min_speech_ms) == COMPLETE_MS
    assert await judge.silence_after(b"\0\0") == COMPLETE_MS  # length unknown: the model
    assert model.asked == 2
    assert judge.silence_ms(Outcome.SHORT) == 500


@pytest.mark.models
@pytest.mark.parametrize("lead_ms", [642, 646, 660])
def test_the_piper_question_is_one_turn_even_when_what_sounds_finished(
    say: Callable[[str], bytes], lead_ms: int
) -> None:
    """The real VAD on the bench's question at three frame phases (642 ms: the one where
    the old detector ended the turn on the rise of "colour"), each pause decided "complete"
    at once, as a fast judge would."""
    pcm = silence(lead_ms) + say(QUESTION) + silence(800)
    vad, detector, energy = SileroVad(), _detector(), EnergyEdge()
    frame_bytes = 2 * FRAME_SAMPLES
    events: list[tuple[str, int]] = []
    gaps: list[int] = []
    for start in range(0, len(pcm) - frame_bytes + 1, frame_bytes):
        offset = start // 32
        samples = np.frombuffer(pcm[start : start + frame_bytes], "<i2").astype(np.float32)
        samples /= 32768.0
        probability = vad.probability(samples)
        energy.push(offset, samples, speaking=probability >= detector.start_threshold)
        for event in detector.push(offset, probability, energy.voiced_until_ms):
            if event.kind == "speech_started" and events:
                gaps.append(event.at_ms - events[-1][1])
            events.append((event.kind, event.at_ms))
            if event.kind == "speech_stopped":
                decided = detector.decide(detector.pause, COMPLETE_MS)
                events += [(e.kind, e.at_ms) for e in decided]
    kinds = [kind for kind, _ in events]
    assert kinds.count("end_of_turn") == 1, events
    assert kinds[-1] == "end_of_turn"
    # The dip after "What" is there, and as long as the wait of a finished utterance.
    assert kinds.count("speech_stopped") >= 2, events
    assert max(gaps) >= COMPLETE_MS - FRAME_MS, gaps
