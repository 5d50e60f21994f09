"""System overhead with the zero-latency scripted models, every service its own process.

Per session: a spoken question (Piper audio, streamed in real time with the microphone kept
open), then, while the long answer plays, the question again to barge in. Reports

- overhead: end of user speech -> first answer audio at the client, minus the silence
  threshold (high sensitivity: 500 ms); the VAD's detection lag is included;
- barge-in: user speech onset -> last audio of the old turn at the client;
- CPU and memory of the service processes per session.

    python -m bench.overhead --sessions 1,10,50,100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import psutil

from bench.audio import speak
from bench.call import Call
from bench.mic import Microphone, voiced_span_ms
from bench.platform import Platform, running_platform
from bench.stats import summary

SILENCE_MS = 500  # high sensitivity
QUESTION = "What is the weather like in Paris today?"
# Eight sentences: about 20 s of scripted speech, long enough to barge into. (A longer text
# arrives from the instant double as one burst of deltas that measures JSON parsing more
# than Parley.)
LONG_REPLY = " ".join(f"This is sentence {i} of a long scripted answer." for i in range(8))
SCRIPTED = {
    "stt_provider": "scripted",
    "llm_provider": "scripted",
    "tts_provider": "scripted",
    "interrupt_sensitivity": "high",
}


@dataclass
class Results:
    """Measurements of one run, in milliseconds."""

    overhead: list[float] = field(default_factory=list)
    barge_in: list[float] = field(default_factory=list)
    interrupted_event: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


async def one_session(url: str, question: bytes, results: Results, start_delay: float) -> None:
    """One caller: ask, then barge in while the answer plays."""
    await asyncio.sleep(start_delay)
    onset_ms, end_ms = voiced_span_ms(question)
    call = await Call.start(url, **SCRIPTED)
    try:
        async with Microphone(call) as mic:
            speech_end = mic.say(question, end_ms)
            start = await call.wait_for("audio_start", within_s=30)
            first_audio = (await call.first_audio()).at
            results.overhead.append((first_audio - await speech_end) * 1000 - SILENCE_MS)
            old_turn = start["data"]["turn_id"]
            await asyncio.sleep(1.0 + random.random())
            mark = len(call.log)
            onset = mic.say(question, onset_ms)
            interrupted = await call.wait_for("interrupted", within_s=30, after=mark)
            await asyncio.sleep(0.5)  # anything still in flight would arrive by now
            old_audio = [r.at for r in call.audio(old_turn)]
            results.barge_in.append((max(old_audio) - await onset) * 1000)
            results.interrupted_event.append((call.arrival(interrupted) - await onset) * 1000)
    except Exception as exc:  # a benchmark reports failures instead of stopping
        results.failures.append(repr(exc))
    finally:
        await call.close()


def _cpu_seconds(processes: list[psutil.Process]) -> dict[str, float]:
    seconds = {}
    for p in processes:
        times = p.cpu_times()
        name = next((a for a in p.cmdline() if a.startswith("parley_")), str(p.pid))
        seconds[name.removeprefix("parley_")] = times.user + times.system
    return seconds


def _rss_mb(processes: list[psutil.Process]) -> float:
    return sum(p.memory_info().rss for p in processes) / 2**20


def _client_process(url: str, question: bytes, sessions: int) -> Results:
    """One load-generator process: ``sessions`` callers on its own event loop."""

    async def run() -> Results:
        results = Results()
        ramp = min(5.0, sessions * 0.05)
        await asyncio.gather(
            *(one_session(url, question, results, random.random() * ramp) for _ in range(sessions))
        )
        return results

    return asyncio.run(run())


async def run_level(
    platform: Platform, sessions: int, question: bytes, clients: int = 1
) -> dict[str, object]:
    """Run ``sessions`` concurrent callers and summarise."""
    processes = platform.processes()
    me = psutil.Process()
    rss_before = _rss_mb(processes)
    cpu_before, wall_before = _cpu_seconds(processes), time.perf_counter()
    client_before = sum(me.cpu_times()[:4])
    # The callers are split over client processes: one Python event loop streaming dozens
    # of microphones in real time would itself become the bottleneck being measured.
    shares = [sessions // clients + (i < sessions % clients) for i in range(clients)]
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(max_workers=clients) as pool:
        parts = await asyncio.gather(
            *(
                loop.run_in_executor(pool, _client_process, platform.url, question, share)
                for share in shares
                if share
            )
        )
    results = Results()
    for part in parts:
        results.overhead += part.overhead
        results.barge_in += part.barge_in
        results.interrupted_event += part.interrupted_event
        results.failures += part.failures
    wall = time.perf_counter() - wall_before
    cpu_after = _cpu_seconds(processes)
    per_service = {
        k: round(100 * (v - cpu_before.get(k, 0.0)) / wall, 1) for k, v in cpu_after.items()
    }
    client_cpu = round(100 * (sum(me.cpu_times()[:4]) - client_before) / wall, 1)
    return {
        "sessions": sessions,
        "overhead_ms": summary(results.overhead),
        "barge_in_ms": summary(results.barge_in),
        "interrupted_event_ms": summary(results.interrupted_event),
        "failures": len(results.failures),
        "failure_examples": results.failures[:3],
        "service_cpu_percent_of_one_core": round(sum(per_service.values()), 1),
        "cpu_percent_by_service": per_service,
        "client_processes": clients,
        "client_cpu_percent": client_cpu,
        "rss_mb_total": round(_rss_mb(processes), 1),
        "rss_mb_before": round(rss_before, 1),
    }


async def main(levels: list[int], clients: int) -> list[dict[str, object]]:
    """Run every level against one platform."""
    question = await speak(QUESTION)
    env = {"PARLEY_SCRIPTED_LLM_REPLY": LONG_REPLY}
    reports = []
    async with running_platform(env) as platform:
        await run_level(platform, 1, question)  # warm-up, not reported
        for sessions in levels:
            report = await run_level(platform, sessions, question, clients)
            print(json.dumps(report), flush=True)
            reports.append(report)
    return reports


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", default="1,10,50,100")
    parser.add_argument("--clients", type=int, default=2, help="load-generator processes")
    args = parser.parse_args()
    asyncio.run(main([int(n) for n in args.sessions.split(",")], args.clients))
