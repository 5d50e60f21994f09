"""Where the gateway spends its CPU under ``bench.overhead``'s load: the same callers, with
the gateway process (and only it) running under cProfile.

A ``sitecustomize`` put first on the services' ``PYTHONPATH`` starts the profiler in the
process whose command line runs ``parley_gateway``; it starts on SIGUSR1, which this bench
sends after the warm-up call, and writes its stats on SIGUSR2, sent once the callers are
done (uvicorn keeps SIGTERM and SIGINT for itself).
Nothing in the gateway knows it is profiled. cProfile roughly doubles the cost of every Python call,
so the figures are shares of the gateway's time, not its speed: read the speed from
``bench.overhead``'s ``cpu_percent_by_service`` without the profiler.

    python -m bench.gateway_profile --sessions 20 --top 30
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import pstats
import signal
import tempfile
from pathlib import Path

from bench import overhead
from bench.audio import speak
from bench.platform import running_platform

_HOOK = """
import sys

if any(a == "parley_gateway" or a.startswith("parley_gateway.") for a in sys.orig_argv):
    import cProfile
    import os
    import signal
    import time

    # CPU time, not wall time: a coroutine's waits and the other processes' turns on the
    # cores are not the gateway's cost.
    _profile = cProfile.Profile(time.process_time)

    def _start(*_: object) -> None:
        _profile.enable()

    def _dump(*_: object) -> None:
        _profile.disable()
        path = os.path.join({out!r}, f"gateway-{{os.getpid()}}.prof")
        _profile.dump_stats(path + ".part")
        os.replace(path + ".part", path)  # whole, or not there yet

    signal.signal(signal.SIGUSR1, _start)
    signal.signal(signal.SIGUSR2, _dump)
"""


def profiled_env(out: Path) -> dict[str, str]:
    """The services' environment additions that profile the gateway into ``out``."""
    hook_dir = out / "hook"
    hook_dir.mkdir(parents=True, exist_ok=True)
    (hook_dir / "sitecustomize.py").write_text(_HOOK.format(out=str(out)))
    path = os.environ.get("PYTHONPATH", "")
    return {"PYTHONPATH": f"{hook_dir}{os.pathsep}{path}" if path else str(hook_dir)}


def report(out: Path, top: int) -> str:
    """The profiles in ``out``, merged: the ``top`` functions by own time and by
    cumulative time."""
    files = sorted(str(p) for p in out.glob("gateway-*.prof"))
    if not files:
        return "no gateway profile was written"
    text = io.StringIO()
    stats = pstats.Stats(*files, stream=text)
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return text.getvalue()


async def main(sessions: int, top: int, keep: Path | None, caller: overhead.Caller) -> None:
    """Run one level with the gateway profiled and print where its time went."""
    question = await speak(overhead.QUESTION)
    with tempfile.TemporaryDirectory(prefix="parley-gw-profile-") as tmp:
        out = keep or Path(tmp)
        env = {**overhead.PLATFORM_ENV, **profiled_env(out)}
        async with running_platform(env) as platform:
            await overhead.run_level(platform, 1, question)  # warm-up, not profiled
            gateways = [p for p in platform.processes() if "parley_gateway" in p.cmdline()]
            for process in gateways:
                process.send_signal(signal.SIGUSR1)
            level = await overhead.run_level(platform, sessions, question, caller=caller)
            for process in gateways:
                process.send_signal(signal.SIGUSR2)
            print(json.dumps(level), flush=True)
            for _ in range(100):  # a busy process takes a moment to write its stats
                if len(list(out.glob("gateway-*.prof"))) >= len(gateways):
                    break
                await asyncio.sleep(0.1)
        print(report(out, top))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--keep", type=Path, help="write the .prof files here and keep them")
    parser.add_argument("--echo-cancellation", default=overhead.ECHO_CANCELLATION)
    args = parser.parse_args()
    caller = overhead.Caller(echo_cancellation=args.echo_cancellation)
    asyncio.run(main(args.sessions, args.top, args.keep, caller))
