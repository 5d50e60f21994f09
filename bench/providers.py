"""What each cloud adapter adds on top of its provider, measured against the local emulators.

Every adapter runs turns one after another against its provider's emulator (zero latency, on
127.0.0.1, in this event loop), after a few warm-up turns. Each turn is timed from the
adapter's side and, for the same thing, inside the emulator (``parley_emulators.base.Moment``):

- STT: ``finish()`` at the end of the turn -> the final transcript (emulator: the request,
  or the Finalize / ForceEndpoint frame, arriving -> the answer that completes the final);
  live sockets also the first audio fed -> the first partial pushed (emulator: the first
  audio arriving -> its first interim result); see ``bench.adapters.stt``;
- LLM: the request -> the first token (emulator: the request read -> its first SSE frame);
- TTS: ``synthesize`` -> the first audio (emulator: the request read -> its first audio
  bytes); input streams ``open_stream``, ``send``, ``flush`` -> the first chunk (emulator:
  the flush arriving -> its first audio frame).

added = adapter's time - emulator's time: connection setup, the SDK building the request and
parsing the answer, Parley's own code, and the local server's HTTP/WebSocket framing (the
"floor" rows: bare ``httpx`` / ``websockets`` clients doing the same exchanges). The
"connections" column counts the TCP connections the emulator saw over the measured turns.

    python -m bench.providers [--turns 50] [--only stt|llm|tts|floor]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Coroutine
from typing import Any

from bench.adapters import floor, llm, stt, tts
from bench.adapters.timing import Case, Kind, Timings
from bench.stats import summary

WARMUP_TURNS = 3
# Between turns, so that one turn's teardown (a socket's close handshake finishing in the
# background) is not measured in the next: a session's turns are seconds apart.
GAP_S = 0.01
CASES: list[Case] = stt.CASES + llm.CASES + tts.CASES + floor.CASES
_KINDS: tuple[Kind, ...] = ("stt", "llm", "tts", "floor")


async def run_case(case: Case, turns: int) -> tuple[Timings, int]:
    """``turns`` measured turns of ``case`` after the warm-up ones, and the connections the
    emulator saw during the measured ones."""
    async with case.serve() as served:
        for _ in range(WARMUP_TURNS):
            await served.turn(Timings())
            await asyncio.sleep(GAP_S)
        served.connections.seen.clear()
        timings = Timings()
        for _ in range(turns):
            await served.turn(timings)
            await asyncio.sleep(GAP_S)
        return timings, len(served.connections.seen)


def rows(case: Case, timings: Timings, connections: int) -> list[dict[str, Any]]:
    """One report row per metric: the added, adapter and emulator times in ms."""
    return [
        {
            "kind": case.kind,
            "adapter": case.adapter,
            "metric": metric,
            "added_ms": summary([(a - e) * 1000 for a, e in pairs]),
            "adapter_ms": summary([a * 1000 for a, _ in pairs]),
            "emulator_ms": summary([e * 1000 for _, e in pairs]),
            "connections": connections,
        }
        for metric, pairs in timings.by_metric.items()
    ]


def table(report: list[dict[str, Any]]) -> str:
    """The report as a Markdown table (ms)."""
    lines = [
        "| kind | adapter | metric | added p50 | added p99 | adapter p50 | adapter p99 "
        "| emulator p50 | turns | connections |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report:
        if "failure" in row:
            lines.append(f"| {row['kind']} | {row['adapter']} | failed: {row['failure']} |")
            continue
        added, total, own = row["added_ms"], row["adapter_ms"], row["emulator_ms"]
        lines.append(
            f"| {row['kind']} | {row['adapter']} | {row['metric']} | {added['p50']} "
            f"| {added['p99']} | {total['p50']} | {total['p99']} | {own['p50']} "
            f"| {added['n']} | {row['connections']} |"
        )
    return "\n".join(lines)


async def main(turns: int, only: Kind | None) -> list[dict[str, Any]]:
    """Run every selected case in turn, then print the table."""
    report: list[dict[str, Any]] = []
    for case in CASES:
        if only is not None and case.kind != only:
            continue
        began = time.perf_counter()
        try:
            timings, connections = await run_case(case, turns)
        except Exception as exc:  # a benchmark reports failures instead of stopping
            report.append({"kind": case.kind, "adapter": case.adapter, "failure": repr(exc)})
            print(f"{case.kind} {case.adapter}: failed: {exc!r}", flush=True)
            continue
        report += rows(case, timings, connections)
        print(f"{case.kind} {case.adapter}: {time.perf_counter() - began:.1f} s", flush=True)
    print(table(report), flush=True)
    return report


def _run(coroutine: Coroutine[Any, Any, list[dict[str, Any]]]) -> None:
    # The services run on uvloop when it is installed, so the adapters are measured on it too.
    try:
        import uvloop
    except ImportError:
        asyncio.run(coroutine)
    else:
        uvloop.run(coroutine)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=50)
    parser.add_argument("--only", choices=_KINDS)
    args = parser.parse_args()
    _run(main(args.turns, args.only))
