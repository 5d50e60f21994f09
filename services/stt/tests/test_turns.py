"""Turn detection: when speech starts, stops, and when the silence ends the turn."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from parley_stt.turns import FRAME_MS, MAX_BACKDATE_MS, EnergyEdge, Phase, TurnDetector


def _run(
    detector: TurnDetector, probs: list[float], voiced: Sequence[int | None] | None = None
) -> list[tuple[str, int]]:
    events: list[tuple[str, int]] = []
    for i, p in enumerate(probs):
        v = voiced[i] if voiced else None
        events += [(e.kind, e.at_ms) for e in detector.push(i * FRAME_MS, p, v)]
    return events


@pytest.mark.parametrize("silence_ms", [500, 1000, 2000])
def test_the_turn_ends_after_exactly_the_silence_threshold(silence_ms: int) -> None:
    speech, quiet = 20, silence_ms // FRAME_MS + 3
    events = _run(TurnDetector(silence_ms), [0.9] * speech + [0.05] * quiet)
    first_quiet = speech * FRAME_MS
    assert events[0] == ("speech_started", 0)
    assert events[1] == ("speech_stopped", first_quiet)
    kind, at = events[2]
    assert kind == "end_of_turn"
    assert silence_ms <= at - first_quiet < silence_ms + FRAME_MS


def test_pauses_shorter_than_the_hangover_do_not_stop_speech() -> None:
    events = _run(TurnDetector(500), [0.9] * 10 + [0.1] * 2 + [0.9] * 10)
    assert [k for k, _ in events] == ["speech_started"]


def test_speech_resuming_in_the_silence_keeps_the_turn_open() -> None:
    detector = TurnDetector(500)
    events = _run(detector, [0.9] * 10 + [0.1] * 10 + [0.9] * 5)
    assert [k for k, _ in events] == ["speech_started", "speech_stopped", "speech_started"]
    assert detector.phase is Phase.SPEAKING


def test_silence_is_dated_from_the_energy_fall_but_never_more_than_two_frames() -> None:
    probs = [0.9] * 20 + [0.1] * 30
    voiced = [i * FRAME_MS + FRAME_MS for i in range(20)] + [20 * FRAME_MS - 20] * 30
    events = dict(_run(TurnDetector(500), probs, voiced))
    assert events["speech_stopped"] == 20 * FRAME_MS - 20
    far = [0.9] * 20 + [0.1] * 30
    early = [None] * 20 + [100] * 30
    dated = dict(_run(TurnDetector(500), far, early))
    assert dated["speech_stopped"] == 20 * FRAME_MS - MAX_BACKDATE_MS


def test_push_to_talk_overrides_the_vad() -> None:
    detector = TurnDetector(2000)
    assert [e.kind for e in detector.force_start(100)] == ["speech_started"]
    assert detector.force_start(150) == []
    ended = [e.kind for e in detector.force_end(900)]
    assert ended == ["speech_stopped", "end_of_turn"]
    assert detector.phase is Phase.IDLE
    assert detector.force_end(1000) == []


def test_energy_edge_finds_the_last_loud_ten_milliseconds() -> None:
    edge = EnergyEdge()
    loud = np.full(512, 0.3, dtype=np.float32)
    edge.push(0, loud, speaking=True)
    assert edge.voiced_until_ms == 30  # three whole 10 ms windows in a 32 ms frame
    tail = np.zeros(512, dtype=np.float32)
    tail[:200] = 0.3  # loud for 12.5 ms, then silent
    edge.push(32, tail, speaking=False)
    assert edge.voiced_until_ms == 32 + 20
    edge.push(64, np.full(512, 0.01, dtype=np.float32), speaking=False)  # below 10 % of peak
    assert edge.voiced_until_ms == 32 + 20


def _pause(detector: TurnDetector, speech: int = 10, quiet: int = 0) -> list[tuple[str, int]]:
    """Speech, then ``quiet`` frames after the pause began (the hangover's 3 frames first)."""
    return _run(detector, [0.9] * speech + [0.05] * (3 + quiet))


def test_a_pause_awaiting_its_decision_ends_only_at_the_longest_wait() -> None:
    detector = TurnDetector(500, max_silence_ms=1500)
    events = _pause(detector, quiet=1500 // FRAME_MS + 2)
    stopped = dict(events)["speech_stopped"]
    (end,) = [at for kind, at in events if kind == "end_of_turn"]
    assert 1500 <= end - stopped < 1500 + FRAME_MS


def test_a_decision_ends_the_pause_at_once_when_enough_silence_was_heard() -> None:
    detector = TurnDetector(500, max_silence_ms=1500)
    events = _pause(detector, quiet=5)  # 8 quiet frames: 256 ms of silence heard
    assert [k for k, _ in events] == ["speech_started", "speech_stopped"]
    assert detector.decide(detector.pause, 1500) == []  # incomplete: wait on
    (ended,) = detector.decide(detector.pause, 200)
    assert (ended.kind, ended.at_ms) == ("end_of_turn", (10 + 8) * FRAME_MS)
    assert detector.phase is Phase.IDLE


def test_a_decided_pause_ends_after_its_own_silence() -> None:
    detector = TurnDetector(500, max_silence_ms=1500)
    _pause(detector)
    assert detector.decide(detector.pause, 200) == []  # 96 ms heard so far
    more = [e.kind for i in range(13, 13 + 4) for e in detector.push(i * FRAME_MS, 0.05)]
    assert more == ["end_of_turn"]  # at 10 * 32 + 200 ms, not the sensitivity's 500


def test_a_decision_about_a_pause_that_is_over_changes_nothing() -> None:
    detector = TurnDetector(500, max_silence_ms=1500)
    _pause(detector, quiet=5)
    old = detector.pause
    detector.push(20 * FRAME_MS, 0.9)  # speech resumed: the same turn goes on
    assert detector.decide(old, 0) == []
    phases = [detector.phase]
    for i in range(21, 25):
        detector.push(i * FRAME_MS, 0.05)  # a new pause
    assert detector.pause == old + 1
    assert detector.decide(old, 0) == []
    phases.append(detector.phase)
    assert phases == [Phase.SPEAKING, Phase.TRAILING]


def test_without_a_judge_the_sensitivity_silence_needs_no_decision() -> None:
    detector = TurnDetector(500)
    events = _pause(detector, quiet=500 // FRAME_MS)
    assert [k for k, _ in events][-1] == "end_of_turn"
