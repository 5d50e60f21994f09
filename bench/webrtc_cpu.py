"""What a WebRTC call costs the gateway: its CPU seconds per session-minute, next to the same
calls over the WebSocket.

One platform (every service its own process, the zero-latency scripted models); per transport,
``--sessions`` callers connect (aiortc clients on loopback for WebRTC, ``bench.call`` for the
WebSocket), each speaks a question in real time, hears the answer and stays in the call with
its microphone open (silence, 50 frames a second) until the window ends. The gateway process's
CPU time over the window, divided by the session-minutes, is printed per transport; the
difference is WebRTC's own work (Opus decoding and encoding, resampling, SRTP, SCTP and
aiortc's pacing, all in the gateway's event loop).

    python -m bench.webrtc_cpu --sessions 5,10 --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import psutil

from bench.audio import silence, speak
from bench.call import Call
from bench.mic import Microphone
from bench.platform import Platform, running_platform
from bench.webrtc_call import WebRtcCall

QUESTION = "What is the weather like in Paris today?"
SCRIPTED = {
    "stt_provider": "scripted",
    "llm_provider": "scripted",
    "tts_provider": "scripted",
    "interrupt_sensitivity": "high",
}


def _gateway(platform: Platform) -> psutil.Process:
    return next(p for p in platform.processes() if "parley_gateway" in p.cmdline())


def _cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


@contextlib.asynccontextmanager
async def _webrtc_callers(url: str, n: int, question: bytes) -> AsyncIterator[None]:
    calls = [await WebRtcCall.start(url, **SCRIPTED) for _ in range(n)]
    try:
        for call in calls:
            call.microphone.write(question + silence(700))
        yield
    finally:
        await asyncio.gather(*(c.close() for c in calls))


@contextlib.asynccontextmanager
async def _websocket_callers(url: str, n: int, question: bytes) -> AsyncIterator[None]:
    calls = [await Call.start(url, **SCRIPTED) for _ in range(n)]
    async with contextlib.AsyncExitStack() as stack:
        mics = [await stack.enter_async_context(Microphone(c)) for c in calls]
        for mic in mics:
            mic.say(question + silence(700), 0)
        try:
            yield
        finally:
            await asyncio.gather(*(c.close() for c in calls))


async def _measure(
    platform: Platform, transport: str, n: int, seconds: float, question: bytes
) -> dict[str, Any]:
    callers = _webrtc_callers if transport == "webrtc" else _websocket_callers
    gateway = _gateway(platform)
    async with callers(platform.url, n, question):
        before, started = _cpu_s(gateway), time.perf_counter()
        await asyncio.sleep(seconds)
        cpu, wall = _cpu_s(gateway) - before, time.perf_counter() - started
    session_minutes = n * wall / 60
    return {
        "transport": transport,
        "sessions": n,
        "window_s": round(wall, 1),
        "gateway_cpu_s": round(cpu, 2),
        "gateway_cpu_s_per_session_minute": round(cpu / session_minutes, 2),
        "gateway_cpu_percent_of_one_core": round(100 * cpu / wall, 1),
    }


async def main(sessions: list[int], seconds: float) -> None:
    """Measure each transport at each session count; one JSON line per measurement."""
    question = await speak(QUESTION)
    async with running_platform() as platform:
        for n in sessions:
            rows = [
                await _measure(platform, t, n, seconds, question) for t in ("websocket", "webrtc")
            ]
            websocket, webrtc = (r["gateway_cpu_s_per_session_minute"] for r in rows)
            for row in rows:
                print(json.dumps(row), flush=True)
            extra = {
                "sessions": n,
                "webrtc_extra_cpu_s_per_session_minute": round(webrtc - websocket, 2),
            }
            print(json.dumps(extra), flush=True)


def _counts(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=_counts, default=[5], help="e.g. 5,10")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window per run")
    args = parser.parse_args()
    asyncio.run(main(args.sessions, args.seconds))
