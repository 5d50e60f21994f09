"""Memory over many sessions (issue 12): session after session against the platform as
deployed (every service its own process, scripted providers so that only Parley's own cost
is measured), each a spoken question answered to the end of its audio and then ended over
REST, in ``--lanes`` sequences side by side (each lane one session at a time). Every
service process's RSS is read before the first measured session and every ``--every``
sessions after it; the report gives the curve and each process's growth, which should stay
within 5 % over 1,000 sessions (a leak per session shows as a steady climb).

The first ``--warm`` sessions are not measured: the first sessions fill caches (compiled
regexes, imported modules, the database pool, NATS subscriptions' buffers) that stay.

    python -m bench.soak --sessions 1000 --every 100 --lanes 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from typing import Any

import httpx
import psutil

from bench.audio import silence, speak
from bench.call import Call
from bench.failover import until_workers_take_sessions
from bench.platform import Platform, running_platform
from bench.stats import summary

CONFIG = {"stt_provider": "scripted", "llm_provider": "scripted", "tts_provider": "scripted"}
REPLY = "Sure, it will be sunny."  # short: a session's playout is most of its time


def _rss_mb(platform: Platform) -> dict[str, float]:
    """Each service process's resident memory, MB, keyed by its name and pid."""
    readings: dict[str, float] = {}
    for service in platform.supervisor.processes:
        if service.pid is None:
            continue  # restarting: its reading is missing from this point of the curve
        name = f"{service.spec.name}:{service.pid}"
        try:
            readings[name] = psutil.Process(service.pid).memory_info().rss / 2**20
        except psutil.NoSuchProcess:
            continue
    return readings


async def one_session(url: str, question: bytes) -> float:
    """A session that asks ``question``, hears the whole answer and is ended; its seconds."""
    started = time.perf_counter()
    call = await Call.start(url, **CONFIG)
    try:
        await call.say(question + silence(1200), realtime=False)
        await call.wait_for("audio_end", within_s=30)
    finally:
        await call.close()
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        (await client.post(f"/api/v1/sessions/{call.session_id}/end")).raise_for_status()
    return time.perf_counter() - started


async def main(sessions: int, every: int, warm: int, lanes: int) -> dict[str, Any]:
    """Run ``warm`` then ``sessions`` sessions, ``lanes`` at a time; print and return the
    report."""
    question = await speak("What is the weather like tomorrow?")
    curve: list[dict[str, Any]] = []
    durations: list[float] = []
    async with running_platform({"PARLEY_SCRIPTED_LLM_REPLY": REPLY}) as platform:
        await until_workers_take_sessions(platform.url)
        done = 0

        async def lane(count: int, measured: bool) -> None:
            nonlocal done
            for _ in range(count):
                took = await one_session(platform.url, question)
                if not measured:
                    continue
                durations.append(took)
                done += 1
                if done % every == 0 or done == sessions:
                    curve.append({"sessions": done, "rss_mb": _rss_mb(platform)})
                    print(json.dumps(curve[-1]), flush=True)

        async def lanes_of(total: int, measured: bool) -> None:
            async with asyncio.TaskGroup() as tg:
                for i in range(lanes):
                    tg.create_task(lane(total // lanes + (i < total % lanes), measured))

        # Warmed as it is measured, lanes side by side: the allocator's high-water mark
        # and every bounded cache are reached before the first reading.
        await lanes_of(warm, measured=False)
        curve.append({"sessions": 0, "rss_mb": _rss_mb(platform)})
        print(json.dumps(curve[-1]), flush=True)
        await lanes_of(sessions, measured=True)
    first, last = curve[0]["rss_mb"], curve[-1]["rss_mb"]
    growth = {
        name: {
            "start_mb": round(first[name], 1),
            "end_mb": round(last.get(name, float("nan")), 1),
            "max_mb": round(max(c["rss_mb"].get(name, 0.0) for c in curve), 1),
            "growth_pct": round((last.get(name, float("nan")) / first[name] - 1) * 100, 2),
        }
        for name in first
    }
    report = {
        "sessions": sessions,
        "lanes": lanes,
        "warm": warm,
        "session_seconds": summary(durations),
        "growth": growth,
        "worst_growth_pct": max(g["growth_pct"] for g in growth.values()),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(report), flush=True)
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--every", type=int, default=100, help="sessions between readings")
    parser.add_argument("--warm", type=int, default=30, help="unmeasured sessions first")
    parser.add_argument("--lanes", type=int, default=1, help="sessions at a time")
    args = parser.parse_args()
    asyncio.run(main(args.sessions, args.every, args.warm, args.lanes))
