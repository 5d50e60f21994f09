"""The batched VAD gives every session exactly what its own SileroVad gives: the same speech
probability per frame and the same turn events, with many sessions' frames mixed in each
ONNX call."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable

import numpy as np
import pytest

from parley_stt.models import silero_vad_path
from parley_stt.turns import EnergyEdge, TurnDetector, TurnEvent
from parley_stt.vad import FRAME_MS, FRAME_SAMPLES, SileroVad
from parley_stt.vad_batch import BatchedVad, VadBatchSettings, VadStream
from parley_stt.vad_graph import batched_silero

pytestmark = pytest.mark.models

FRAME_BYTES = 2 * FRAME_SAMPLES
# Float summation order may differ between batch sizes; the observed difference is 0.
TOLERANCE = 1e-5
SENTENCES = [
    "What is the weather like in Paris today?",
    "Please remind me to call the dentist tomorrow morning.",
    "I'd like to book a table for two, at eight, if that works.",
    "Hello there, how are you today?",
    "Turn the lights off in the kitchen and then tell me a joke.",
]


def noise(seconds: float, level: float, seed: int) -> bytes:
    samples = np.random.default_rng(seed).standard_normal(int(16_000 * seconds))
    return (samples * level * 32767).astype("<i2").tobytes()


def session_audio(say: Callable[[str], bytes], index: int) -> bytes:
    """Different speech, lead-in silence, noise and length for each session, so that the
    rows of a call are at different points of different utterances."""
    lead_in = bytes(FRAME_BYTES * (3 + 7 * index))
    speech = say(SENTENCES[index % len(SENTENCES)])
    tail = noise(0.3 + 0.2 * index, 0.002 * (index + 1), seed=index) + bytes(FRAME_BYTES * 25)
    audio = lead_in + speech + tail
    return audio[: len(audio) - len(audio) % FRAME_BYTES]


def as_frames(pcm: bytes) -> list[np.ndarray]:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    return list(samples.reshape(-1, FRAME_SAMPLES))


def turn_events(frames: list[np.ndarray], probabilities: list[float]) -> list[TurnEvent]:
    """What the session's turn detection makes of the probabilities."""
    detector, energy, events = TurnDetector(500), EnergyEdge(), []
    for i, (samples, probability) in enumerate(zip(frames, probabilities, strict=True)):
        offset = i * FRAME_MS
        energy.push(offset, samples, speaking=probability >= detector.start_threshold)
        events += detector.push(offset, probability, energy.voiced_until_ms)
    return events


async def batched(
    batcher: BatchedVad, streams: list[VadStream], audio: list[list[np.ndarray]]
) -> list[list[float]]:
    async def one(index: int) -> list[float]:
        # Sessions join at different ticks, as they would on a worker.
        for _ in range(index * 3):
            await asyncio.sleep(0)
        return [await streams[index].probability(frame) for frame in audio[index]]

    return list(await asyncio.gather(*(one(i) for i in range(len(streams)))))


@pytest.mark.parametrize(
    ("inline_rows", "tick_ms"), [(0, 0.0), (1_000, 0.0), (0, 2.0)], ids=["thread", "inline", "tick"]
)
async def test_each_session_gets_what_its_own_vad_gives(
    say: Callable[[str], bytes], inline_rows: int, tick_ms: float
) -> None:
    audio = [as_frames(session_audio(say, i)) for i in range(6)]
    alone = []
    for frames in audio:
        vad = SileroVad()
        alone.append([vad.probability(frame) for frame in frames])

    batcher = BatchedVad(VadBatchSettings(inline_rows=inline_rows, tick_ms=tick_ms))
    streams = [await asyncio.to_thread(batcher.stream) for _ in audio]
    together = await batched(batcher, streams, audio)
    batcher.close()

    # The rows really were mixed: calls carried several sessions' frames on average (in a
    # thread, the sessions settle into groups that alternate, each queued while the other's
    # call runs).
    assert batcher.rows == sum(len(frames) for frames in audio)
    assert batcher.rows >= 1.5 * batcher.calls
    for frames, mine, theirs in zip(audio, alone, together, strict=True):
        assert len(theirs) == len(mine)
        assert max(abs(a - b) for a, b in zip(mine, theirs, strict=True)) <= TOLERANCE
        expected = turn_events(frames, mine)
        assert [e.kind for e in expected].count("end_of_turn") >= 1  # speech was heard
        assert turn_events(frames, theirs) == expected


async def test_frames_of_one_stream_queued_together_run_in_order(
    say: Callable[[str], bytes],
) -> None:
    frames = as_frames(session_audio(say, 1))[:40]
    vad = SileroVad()
    expected = [vad.probability(frame) for frame in frames]

    batcher = BatchedVad(VadBatchSettings(inline_rows=0))
    stream = await asyncio.to_thread(batcher.stream)
    idle = await asyncio.to_thread(batcher.stream)  # not alone: frames go through the queue
    # All queued at once: each must wait for the previous one's state.
    got = await asyncio.gather(*(stream.probability(frame) for frame in frames))
    batcher.close()
    del idle

    assert batcher.calls == len(frames)
    assert max(abs(a - b) for a, b in zip(expected, got, strict=True)) <= TOLERANCE


async def test_a_frame_of_the_wrong_size_is_refused() -> None:
    batcher = BatchedVad()
    stream = await asyncio.to_thread(batcher.stream)
    with pytest.raises(ValueError, match="512 samples"):
        await stream.probability(np.zeros(480, dtype=np.float32))


def test_the_rewrite_refuses_a_graph_it_does_not_know() -> None:
    once = batched_silero(silero_vad_path().read_bytes())
    # Already rewritten: the LSTM's transpose is no longer the shipped one.
    with pytest.raises(ValueError, match="time-major"):
        batched_silero(once)


@pytest.mark.parametrize("inline_rows", [0, 1_000], ids=["thread", "inline"])
async def test_a_failed_call_fails_every_frame_in_it_and_the_next_call_runs(
    inline_rows: int,
) -> None:
    batcher = BatchedVad(VadBatchSettings(inline_rows=inline_rows))
    streams = [await asyncio.to_thread(batcher.stream) for _ in range(3)]
    working = batcher._session

    class Broken:
        def run(self, *args: object) -> None:
            raise RuntimeError("onnxruntime failed")

    batcher._session = Broken()
    silent = np.zeros(FRAME_SAMPLES, dtype=np.float32)
    results = await asyncio.gather(
        *(s.probability(silent) for s in streams), return_exceptions=True
    )
    assert all(isinstance(r, RuntimeError) for r in results)

    batcher._session = working
    assert await streams[0].probability(silent) < 0.5
    batcher.close()


async def test_a_lone_stream_runs_at_once_and_two_wait_for_the_call() -> None:
    batcher = BatchedVad()
    first = await asyncio.to_thread(batcher.stream)
    silent = np.zeros(FRAME_SAMPLES, dtype=np.float32)

    # Alone, a frame is answered without suspending: a burst of frames is one go on the loop.
    alone = first.probability(silent)
    with pytest.raises(StopIteration):
        alone.send(None)

    second = await asyncio.to_thread(batcher.stream)
    together = asyncio.ensure_future(first.probability(silent))
    await asyncio.sleep(0)  # the frame is queued for the next call, not answered yet
    assert not together.done()
    assert await together < 0.5

    # Once the other stream is gone, the first is alone again.
    del second
    gc.collect()
    assert batcher.alone()
