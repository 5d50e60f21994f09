"""The STT worker's per-frame cost for N sessions: each session with its own Silero call per
32 ms frame on the event loop (``per-session``, as before issue 12) against one call per tick
for all of them (``batched``, parley_stt.vad_batch, with each tick of ``--ticks-ms``: how
long a call waits for more sessions' frames), side by side in one run.

Each session gets spoken audio (Piper questions between silences, a different question and
offset per session) as 20 ms network frames paced in real time at a random phase, through
its own queue and consumer task (as the bus delivers a subscription's messages), and does
what ``SttSession._on_frame`` does per 32 ms frame: PCM16 to float, the VAD, the energy edge,
the turn detector. The ``harness`` mode does only the pacing and the queues, so that its CPU
can be told apart. Reported per mode and N:

- CPU per session per second of audio (ms, all threads) and on the event loop's thread;
- how late each frame's result came after its last byte was due (p50/p99 ms): the VAD's
  share of barge-in latency, and whether the loop keeps up;
- for ``batched``, the mean rows per ONNX call.

    python -m bench.stt_frames --sessions 1,30,100,200 --seconds 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
from dataclasses import dataclass, field

import numpy as np

from bench.audio import BYTES_PER_MS, FRAME_MS, silence, spoken
from bench.stats import summary
from parley_stt.turns import FRAME_MS as VAD_FRAME_MS
from parley_stt.turns import EnergyEdge, TurnDetector
from parley_stt.vad import FRAME_SAMPLES, SileroVad
from parley_stt.vad_batch import BatchedVad, FrameVad, VadBatchSettings, as_frame_vad

QUESTIONS = [
    "What is the weather like in Paris today?",
    "Please remind me to call the dentist tomorrow morning.",
    "Can you tell me a short story about a dragon?",
    "How long does it take to boil an egg?",
    "Turn the lights off in the kitchen, please.",
]
VAD_FRAME_BYTES = 2 * FRAME_SAMPLES
NET_FRAME_BYTES = FRAME_MS * BYTES_PER_MS
TICK_S = 0.004  # the pacer's resolution: sessions' phases fall in 5 slots of a 20 ms frame
MODES = ("harness", "per-session", "batched")
TICKS_MS = (0.0, 5.0)  # batched: how long a call waits for more sessions' frames


def session_audio(index: int, seconds: float) -> bytes:
    """``seconds`` of a session's microphone: questions between silences, offset per session."""
    rng = random.Random(index)
    pcm = bytearray(silence(rng.randrange(100, 1500)))
    while len(pcm) < seconds * 1000 * BYTES_PER_MS:
        pcm += spoken(QUESTIONS[(index + len(pcm)) % len(QUESTIONS)])
        pcm += silence(rng.randrange(600, 2000))
    return bytes(pcm[: int(seconds * 1000) * BYTES_PER_MS])


@dataclass
class Session:
    """One session's frame path, fed through its own queue."""

    vad: FrameVad | None
    queue: asyncio.Queue[tuple[bytes, float] | None] = field(default_factory=asyncio.Queue)
    detector: TurnDetector = field(default_factory=lambda: TurnDetector(500))
    energy: EnergyEdge = field(default_factory=EnergyEdge)
    pending: bytearray = field(default_factory=bytearray)
    offset_ms: int = 0
    late_ms: list[float] = field(default_factory=list)

    async def consume(self) -> None:
        while (item := await self.queue.get()) is not None:
            data, due = item
            self.pending += data
            while len(self.pending) >= VAD_FRAME_BYTES:
                frame = bytes(self.pending[:VAD_FRAME_BYTES])
                del self.pending[:VAD_FRAME_BYTES]
                await self.on_frame(frame)
                self.late_ms.append((time.perf_counter() - due) * 1000)

    async def on_frame(self, frame: bytes) -> None:
        if self.vad is None:
            return
        samples = np.frombuffer(frame, dtype=np.int16).astype(np.float32) / 32768.0
        probability = await self.vad.probability(samples)
        start = self.detector.start_threshold
        self.energy.push(self.offset_ms, samples, speaking=probability >= start)
        self.detector.push(self.offset_ms, probability, self.energy.voiced_until_ms)
        self.offset_ms += VAD_FRAME_MS


async def pace(sessions: list[Session], audio: list[bytes], seconds: float) -> None:
    """Every session's next 20 ms frame at its own phase, in real time."""
    rng = random.Random(0)
    slots = round(FRAME_MS / 1000 / TICK_S)
    phase = [rng.randrange(slots) for _ in sessions]
    start = time.perf_counter()
    for tick in range(int(seconds / TICK_S)):
        due = start + (tick + 1) * TICK_S
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        frame_no, slot = divmod(tick, slots)
        for i, session in enumerate(sessions):
            if phase[i] == slot:
                chunk = audio[i][frame_no * NET_FRAME_BYTES : (frame_no + 1) * NET_FRAME_BYTES]
                session.queue.put_nowait((chunk, due))
    for session in sessions:
        session.queue.put_nowait(None)


async def run(
    mode: str, n: int, audio: list[bytes], seconds: float, tick_ms: float = 0.0
) -> dict[str, object]:
    batcher = BatchedVad(VadBatchSettings(tick_ms=tick_ms))
    sessions = []
    for _ in range(n):
        vad: FrameVad | None = None
        if mode == "per-session":
            vad = as_frame_vad(await asyncio.to_thread(SileroVad))
        elif mode == "batched":
            vad = await asyncio.to_thread(batcher.stream)
        sessions.append(Session(vad))
    consumers = [asyncio.create_task(s.consume()) for s in sessions]
    wall, cpu, loop_cpu = time.perf_counter(), time.process_time(), time.thread_time()
    await pace(sessions, audio, seconds)
    await asyncio.gather(*consumers)
    wall = time.perf_counter() - wall
    cpu, loop_cpu = time.process_time() - cpu, time.thread_time() - loop_cpu
    batcher.close()
    audio_s = n * seconds
    late = summary([ms for s in sessions for ms in s.late_ms])
    result: dict[str, object] = {
        "mode": mode,
        "sessions": n,
        "cpu_ms_per_session_s": round(cpu * 1000 / audio_s, 2),
        "loop_cpu_ms_per_session_s": round(loop_cpu * 1000 / audio_s, 2),
        "core_pct": round(cpu / wall * 100, 1),
        "late_p50_ms": late.get("p50"),
        "late_p99_ms": late.get("p99"),
        "load_avg_1m": round(os.getloadavg()[0], 1),  # other work on the machine skews it
    }
    if mode == "batched":
        result["tick_ms"] = tick_ms
        result["rows_per_call"] = round(batcher.rows / max(1, batcher.calls), 1)
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", default="1,30,100,200")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--ticks-ms", default=",".join(str(t) for t in TICKS_MS))
    args = parser.parse_args()
    counts = [int(n) for n in args.sessions.split(",")]
    audio = await asyncio.to_thread(
        lambda: [session_audio(i, args.seconds) for i in range(max(counts))]
    )
    await asyncio.to_thread(SileroVad)  # load both models before measuring
    await asyncio.to_thread(BatchedVad().stream)
    for n in counts:
        for mode in args.modes.split(","):
            ticks = [float(t) for t in args.ticks_ms.split(",")] if mode == "batched" else [0.0]
            for tick in ticks:
                result = await run(mode, n, audio[:n], args.seconds, tick)
                print(json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
