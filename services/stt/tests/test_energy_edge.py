"""The energy edge's cheaper per-frame arithmetic gives what the plain numpy version gave, to
the millisecond and the float, on frames from silence to full scale."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from parley_stt.turns import EnergyEdge


class Reference:
    """The straightforward version (one numpy expression per step), as the oracle."""

    def __init__(self) -> None:
        self.voiced_until_ms: int | None = None
        self.peak = 0.0

    def push(self, offset_ms: int, samples: npt.NDArray[np.float32], speaking: bool) -> None:
        usable = len(samples) - len(samples) % EnergyEdge.WINDOW
        rms = np.sqrt(np.mean(samples[:usable].reshape(-1, EnergyEdge.WINDOW) ** 2, axis=1))
        if speaking:
            self.peak = max(self.peak, float(rms.max(initial=0.0)))
        floor = max(EnergyEdge.ABSOLUTE_FLOOR, self.peak * EnergyEdge.RELATIVE_FLOOR)
        loud = np.nonzero(rms > floor)[0]
        if len(loud):
            self.voiced_until_ms = offset_ms + (int(loud[-1]) + 1) * 10


def test_the_edge_and_the_peak_match_the_reference_frame_by_frame() -> None:
    rng = np.random.default_rng(12)
    edge, reference = EnergyEdge(), Reference()
    changed = 0
    for frame in range(20_000):
        level = 10 ** rng.uniform(-4.5, 0)
        samples = (rng.standard_normal(512) * level).astype(np.float32)
        if rng.random() < 0.3:  # a loud burst in one window, quiet elsewhere
            samples[160 * rng.integers(3) :][:160] *= 20
        samples = np.clip(samples, -1, 1)
        speaking = bool(rng.random() < 0.5)
        if rng.random() < 0.01:
            edge.new_utterance()
            reference.peak = 0.0
        before = edge.voiced_until_ms
        edge.push(frame * 32, samples, speaking)
        reference.push(frame * 32, samples, speaking)
        assert edge.voiced_until_ms == reference.voiced_until_ms, frame
        changed += edge.voiced_until_ms != before
    # Both branches were exercised: the edge moved on many frames and stood still on many.
    assert 2_000 < changed < 18_000


def test_silence_moves_nothing_and_speech_dates_its_last_loud_window() -> None:
    edge = EnergyEdge()
    edge.push(0, np.zeros(512, dtype=np.float32), speaking=False)
    assert edge.voiced_until_ms is None
    loud = np.zeros(512, dtype=np.float32)
    loud[160:320] = 0.5  # the second 10 ms window only
    edge.push(64, loud, speaking=True)
    assert edge.voiced_until_ms == 64 + 20
