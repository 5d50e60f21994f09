"""Failover under load: two processes of stt, llm and tts, scripted models, N callers each
asking a question every few seconds; mid-run one process of each service is killed with
SIGKILL (the supervisor restarts it, as it would in production). Reports whether every
session went on (each turn asked after the kill answered), and the latency (end of speech
-> first answer audio) of the turns around the kill against the others.

    python -m bench.failover --sessions 20 --turns 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import time
from dataclasses import dataclass, field

from bench.audio import silence, speak
from bench.call import Call
from bench.platform import Platform, running_platform
from bench.stats import summary

QUESTION = "What time is it?"
SCRIPTED = {"stt_provider": "scripted", "llm_provider": "scripted", "tts_provider": "scripted"}
KILLED = ("stt-2", "llm-2", "tts-2")
# Turns that started this close to the kill are "during failover".
AROUND_KILL_S = 5.0
TURN_GAP_S = 1.5


@dataclass
class Turns:
    """What every caller saw: (start time, latency ms) of each answered turn."""

    answered: list[tuple[float, float]] = field(default_factory=list)
    # Start times of turns never answered, and the errors of callers that broke off.
    unanswered: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def caller(url: str, question: bytes, turns: int, results: Turns) -> None:
    """One session: ``turns`` spoken questions, each waited for to the end of its answer."""
    await asyncio.sleep(random.random() * 3)
    try:
        call = await Call.start(url, **SCRIPTED)
    except Exception as exc:  # a refused start is a result
        results.errors.append(f"start: {exc!r}")
        return
    try:
        for _ in range(turns):
            mark = len(call.log)
            started = time.monotonic()
            spoken_end = await call.say(question + silence(1200))
            try:
                await call.wait_for("audio_end", within_s=30, after=mark)
            except TimeoutError:
                results.unanswered.append(started)
                continue
            first = await call.first_audio(after=mark)
            results.answered.append((started, (first.at - spoken_end) * 1000 + 1200))
            await asyncio.sleep(TURN_GAP_S)
    except Exception as exc:
        results.errors.append(repr(exc))
    finally:
        await call.close()


async def until_workers_take_sessions(url: str, within_s: float = 120.0) -> None:
    """Start (and end) sessions until one is taken: the gateway answers before every worker
    has loaded its models."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            call = await Call.start(url, **SCRIPTED)
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1.0)
            continue
        await call.close()
        return


async def kill_one_of_each(platform: Platform, after_s: float) -> float:
    """SIGKILL the second process of each streaming service after ``after_s``; returns when."""
    await asyncio.sleep(after_s)
    killed_at = time.monotonic()
    for process in platform.supervisor.processes:
        if process.spec.name in KILLED and process.pid is not None:
            os.kill(process.pid, signal.SIGKILL)
    return killed_at


async def main(sessions: int, turns: int, kill_after_s: float) -> dict[str, object]:
    """Run the callers, kill mid-run, summarise."""
    question = await speak(QUESTION)
    os.environ.setdefault("PARLEY_SCALE", "stt=2,llm=2,tts=2")
    results = Turns()
    async with running_platform() as platform:
        await until_workers_take_sessions(platform.url)
        await asyncio.sleep(3.0)  # every worker's heartbeat has reached the gateway
        killing = asyncio.create_task(kill_one_of_each(platform, kill_after_s))
        await asyncio.gather(
            *(caller(platform.url, question, turns, results) for _ in range(sessions))
        )
        killed_at = await killing
    around = [ms for at, ms in results.answered if abs(at - killed_at) <= AROUND_KILL_S]
    others = [ms for at, ms in results.answered if abs(at - killed_at) > AROUND_KILL_S]
    after_kill = [at for at, _ in results.answered if at > killed_at]
    report = {
        "sessions": sessions,
        "turns_asked": sessions * turns,
        "turns_answered": len(results.answered),
        "turns_unanswered": len(results.unanswered),
        "unanswered_after_kill": sum(at > killed_at for at in results.unanswered),
        "answered_after_kill": len(after_kill),
        "latency_ms_around_kill": summary(around),
        "latency_ms_otherwise": summary(others),
        "caller_errors": results.errors[:3],
        "scale": os.environ["PARLEY_SCALE"],
        "killed": list(KILLED),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(report), flush=True)
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--kill-after", type=float, default=10.0, help="seconds into the run")
    args = parser.parse_args()
    asyncio.run(main(args.sessions, args.turns, args.kill_after))
