"""System overhead with the zero-latency scripted models, every service its own process.

Per session: a spoken question (Piper audio, streamed in real time with the microphone kept
open), then, while the long answer plays, the question again to barge in. Reports

- overhead: end of user speech -> first answer audio at the client, minus the silence
  threshold (high sensitivity: 500 ms); the VAD's detection lag is included;
- barge-in: user speech onset (the frame holding its first voiced 10 ms, as sent) -> the
  last audio of the old answer at the client. With pause-first barge-in (the default) that is
  when ``audio_pause`` arrives, since the client drops what it buffered then and the gateway
  sends no more of the turn; with ``--barge-in stop`` it is ``interrupted``. The verdict
  (onset -> ``interrupted``) is reported beside it, and a barge-in whose old answer went on
  after the pause (judged a backchannel or noise) is a failure: it is a real interruption;
- CPU and memory of the service processes per session;
- the load generator itself: its CPU and its pacing lateness (how late each 20 ms
  microphone frame went out). A run whose lateness p99 exceeds 20 ms measured the client, not
  Parley, and is marked ``"valid": false``.

The scripted recogniser hears what the caller said (``PARLEY_SCRIPTED_STT_TEXT`` is the
question), so the overlap's transcript is the question's words and the gateway judges it the
way it would judge a real one; the transcripts the client saw during the overlap are reported.

The callers run in as many processes as it takes (``--clients auto``: one per
``SESSIONS_PER_CLIENT``), each with its own event loop.

    python -m bench.overhead --sessions 1,10,50,100 [--barge-in stop]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import psutil

from bench.audio import speak
from bench.call import Call, Received
from bench.mic import Microphone, voiced_span_ms
from bench.platform import Platform, running_platform
from bench.stats import summary
from parley_stt.providers.scripted import TEXT_ENV as SCRIPTED_STT_TEXT_ENV

SILENCE_MS = 500  # high sensitivity
# Callers per load-generator process with --clients auto: one event loop keeps 20 ms pacing
# for a few dozen microphones, not for a hundred.
SESSIONS_PER_CLIENT = 15
# Above this pacing lateness (p99, ms), a run measured its own client: invalid.
MAX_PACING_LATENESS_MS = 20.0
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
# Parley's own clients (the web app, the JS client) cancel echo in the browser and say so;
# ``--echo-cancellation server`` adds the gateway's AEC3 (bench.aec_cpu measures it alone).
ECHO_CANCELLATION = "client"
BargeIn = Literal["pause", "stop"]
# What ends the old answer at the client: it drops its buffer on either.
_STOPS = ("audio_pause", "interrupted")


@dataclass
class Results:
    """Measurements of one run, in milliseconds."""

    overhead: list[float] = field(default_factory=list)
    barge_in: list[float] = field(default_factory=list)
    interrupted_event: list[float] = field(default_factory=list)
    # The user transcripts the client saw between the barge-in's onset and ``interrupted``.
    overlap_transcripts: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    start_failures: list[str] = field(default_factory=list)
    # How late each microphone frame was sent, and the CPU seconds of the client processes.
    pacing_lateness: list[float] = field(default_factory=list)
    client_cpu_s: float = 0.0
    downlink_frames: int = 0  # audio messages the callers received

    def add(self, other: Results) -> None:
        """Merge another load-generator process's results into these."""
        self.overhead += other.overhead
        self.barge_in += other.barge_in
        self.interrupted_event += other.interrupted_event
        self.overlap_transcripts += other.overlap_transcripts
        self.failures += other.failures
        self.start_failures += other.start_failures
        self.pacing_lateness += other.pacing_lateness
        self.client_cpu_s += other.client_cpu_s
        self.downlink_frames += other.downlink_frames


@dataclass(frozen=True)
class Caller:
    """How every caller of a run configures its session."""

    barge_in: BargeIn = "pause"
    echo_cancellation: str = ECHO_CANCELLATION


async def one_session(
    url: str, question: bytes, results: Results, start_delay: float, caller: Caller
) -> None:
    """One caller: ask, then barge in while the answer plays."""
    await asyncio.sleep(start_delay)
    onset_ms, end_ms = voiced_span_ms(question)
    try:
        call = await Call.start(
            url,
            **SCRIPTED,
            barge_in=caller.barge_in,
            echo_cancellation=caller.echo_cancellation,
        )
    except Exception as exc:  # a refused start (503: no worker took it) is a result too
        results.start_failures.append(repr(exc))
        return
    step = "answer"  # what the caller was waiting for when it failed
    try:
        async with Microphone(call, results.pacing_lateness) as mic:
            speech_end = mic.say(question, end_ms)
            start = await call.wait_for("audio_start", within_s=30)
            first_audio = (await call.first_audio()).at
            results.overhead.append((first_audio - await speech_end) * 1000 - SILENCE_MS)
            old_turn = start["data"]["turn_id"]
            await asyncio.sleep(1.0 + random.random())
            mark = len(call.log)
            onset = mic.say(question, onset_ms)
            step = "interruption"
            interrupted = await call.wait_for(
                "interrupted",
                lambda e: e["data"].get("turn_id") == old_turn,
                within_s=30,
                after=mark,
            )
            await asyncio.sleep(0.5)  # anything still in flight would arrive by now
            spoken = await onset
            stop = _old_audio_stop(call.log[mark:], old_turn)
            results.barge_in.append((stop - spoken) * 1000)
            results.interrupted_event.append((call.arrival(interrupted) - spoken) * 1000)
            results.overlap_transcripts.update(_overlap_texts(call.log[mark:], interrupted))
    except Exception as exc:  # a benchmark reports failures instead of stopping
        results.failures.append(f"{step}: {exc!r}")
    finally:
        await call.close()
        results.downlink_frames += len(call.audio())


def _old_audio_stop(log: list[Received], old_turn: int) -> float:
    """When the old answer stopped at the client: the arrival of its first ``audio_pause``
    or ``interrupted``. Its audio arriving after that means the pause was resumed, which
    for a real interruption is a wrong verdict: raised as the session's failure."""
    stop = next(
        r
        for r in log
        if r.event is not None
        and r.event.get("type") in _STOPS
        and r.event["data"].get("turn_id") == old_turn
    )
    late = [r.at for r in log if r.audio is not None and r.turn_id == old_turn and r.at > stop.at]
    if late:
        raise AssertionError(f"old answer resumed: {len(late)} frames after the pause")
    return stop.at


def _overlap_texts(log: list[Received], until: dict[str, Any]) -> list[str]:
    """The user transcripts received before ``until`` (the overlap's, as the gateway saw)."""
    texts = []
    for r in log:
        if r.event is until:
            break
        if r.event is not None and r.event.get("type") == "transcript":
            data = r.event["data"]
            if data.get("role") == "user":
                kind = "final" if data.get("is_final") else "partial"
                texts.append(f"{kind}: {data.get('text')}")
    return texts


def _cpu_seconds(processes: list[psutil.Process]) -> dict[str, float]:
    seconds: dict[str, float] = {}
    for p in processes:
        times = p.cpu_times()
        name = next((a for a in p.cmdline() if a.startswith("parley_")), str(p.pid))
        # The processes of a scaled-out service add up under its name.
        key = name.removeprefix("parley_")
        seconds[key] = seconds.get(key, 0.0) + times.user + times.system
    return seconds


def _rss_mb(processes: list[psutil.Process]) -> float:
    return sum(p.memory_info().rss for p in processes) / 2**20


def _client_process(url: str, question: bytes, sessions: int, caller: Caller) -> Results:
    """One load-generator process: ``sessions`` callers on its own event loop."""

    async def run() -> Results:
        results = Results()
        cpu_before = time.process_time()
        ramp = min(5.0, sessions * 0.05)
        await asyncio.gather(
            *(
                one_session(url, question, results, random.random() * ramp, caller)
                for _ in range(sessions)
            )
        )
        results.client_cpu_s = time.process_time() - cpu_before
        return results

    return asyncio.run(run())


def client_processes(sessions: int, chosen: int | None) -> int:
    """How many load-generator processes run ``sessions`` callers: ``chosen``, else one
    per ``SESSIONS_PER_CLIENT``."""
    return chosen if chosen is not None else max(1, math.ceil(sessions / SESSIONS_PER_CLIENT))


async def run_level(
    platform: Platform,
    sessions: int,
    question: bytes,
    clients: int | None = None,
    caller: Caller = Caller(),
) -> dict[str, object]:
    """Run ``sessions`` concurrent callers and summarise."""
    clients = client_processes(sessions, clients)
    processes = platform.processes()
    rss_before = _rss_mb(processes)
    cpu_before, wall_before = _cpu_seconds(processes), time.perf_counter()
    machine_before = psutil.cpu_times()._asdict()
    load_before = round(psutil.getloadavg()[0], 2)
    # The callers are split over client processes: one Python event loop streaming dozens
    # of microphones in real time would itself become the bottleneck being measured.
    shares = [sessions // clients + (i < sessions % clients) for i in range(clients)]
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(max_workers=clients) as pool:
        parts = await asyncio.gather(
            *(
                loop.run_in_executor(pool, _client_process, platform.url, question, share, caller)
                for share in shares
                if share
            )
        )
    results = Results()
    for part in parts:
        results.add(part)
    wall = time.perf_counter() - wall_before
    machine = _busy_percent(machine_before, psutil.cpu_times()._asdict())
    cpu_after = _cpu_seconds(processes)
    per_service = {
        k: round(100 * (v - cpu_before.get(k, 0.0)) / wall, 1) for k, v in cpu_after.items()
    }
    client_cpu = round(100 * results.client_cpu_s / wall, 1)
    pacing = summary(results.pacing_lateness)
    # Nothing paced (every start refused) measured nothing either.
    valid = pacing["n"] > 0 and pacing.get("p99", 0.0) <= MAX_PACING_LATENESS_MS
    return {
        "valid": valid,
        "pacing_lateness_ms": pacing,
        "sessions": sessions,
        "barge_in_mode": caller.barge_in,
        "echo_cancellation": caller.echo_cancellation,
        "overhead_ms": summary(results.overhead),
        "barge_in_ms": summary(results.barge_in),
        "interrupted_event_ms": summary(results.interrupted_event),
        "overlap_transcripts": dict(results.overlap_transcripts.most_common(3)),
        "failures": len(results.failures),
        "failure_examples": results.failures[:3],
        "failed_starts": len(results.start_failures),
        "failed_start_examples": results.start_failures[:3],
        "service_cpu_percent_of_one_core": round(sum(per_service.values()), 1),
        "cpu_percent_by_service": per_service,
        # Audio through the gateway, and its CPU per uplink frame (all its work included:
        # the downlink, events and session set-up ride on the same calls).
        "uplink_frames": pacing["n"],
        "downlink_frames": results.downlink_frames,
        "gateway_cpu_us_per_uplink_frame": _per_frame_us(
            cpu_after.get("gateway", 0.0) - cpu_before.get("gateway", 0.0), pacing["n"]
        ),
        "wall_s": round(wall, 1),
        "client_processes": clients,
        "client_cpu_percent": client_cpu,
        # Everything on the machine (other users included), in % of all its cores.
        "machine_busy_percent": machine,
        "load_average_1m_before": load_before,
        "rss_mb_total": round(_rss_mb(processes), 1),
        "rss_mb_before": round(rss_before, 1),
    }


def _per_frame_us(cpu_s: float, frames: float) -> float:
    return round(cpu_s / frames * 1e6, 1) if frames else 0.0


def _busy_percent(before: dict[str, float], after: dict[str, float]) -> float:
    """The share of all cores that was busy between two ``psutil.cpu_times()``."""
    # guest time is counted in user time already.
    spent = {k: after[k] - before[k] for k in after if not k.startswith("guest")}
    idle = spent.get("idle", 0.0) + spent.get("iowait", 0.0)
    total = sum(spent.values())
    return round(100 * (1 - idle / total), 1) if total > 0 else 0.0


# The services' environment: the dialogue double's long answer, and a recogniser double
# that hears the words that were spoken, barge-in included.
PLATFORM_ENV = {"PARLEY_SCRIPTED_LLM_REPLY": LONG_REPLY, SCRIPTED_STT_TEXT_ENV: QUESTION}


async def main(
    levels: list[int],
    clients: int | None,
    caller: Caller = Caller(),
) -> list[dict[str, object]]:
    """Run every level against one platform."""
    question = await speak(QUESTION)
    reports = []
    async with running_platform(PLATFORM_ENV) as platform:
        await run_level(platform, 1, question)  # warm-up, not reported
        for sessions in levels:
            report = await run_level(platform, sessions, question, clients, caller)
            print(json.dumps(report), flush=True)
            reports.append(report)
    return reports


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", default="1,10,50,100")
    parser.add_argument(
        "--clients",
        default="auto",
        help=f"load-generator processes (auto: one per {SESSIONS_PER_CLIENT} sessions)",
    )
    parser.add_argument(
        "--barge-in",
        choices=("pause", "stop"),
        default="pause",
        help="the sessions' barge_in: pause first and judge (default), or stop at once",
    )
    parser.add_argument(
        "--echo-cancellation",
        choices=("client", "server", "auto", "off"),
        default=ECHO_CANCELLATION,
        help="the sessions' echo_cancellation (client: as Parley's web and JS clients)",
    )
    args = parser.parse_args()
    clients = None if args.clients == "auto" else int(args.clients)
    caller = Caller(args.barge_in, args.echo_cancellation)
    asyncio.run(main([int(n) for n in args.sessions.split(",")], clients, caller))
