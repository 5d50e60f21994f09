"""``python -m parley_stt``: a stt worker taking sessions from its queue group."""

from __future__ import annotations

import asyncio

from parley_common.contracts.session import SttProvider as SttName
from parley_common.providers import prepare_providers
from parley_common.runtime import Runtime, run
from parley_common.warmup import warm_up
from parley_common.workers import SessionWorker
from parley_stt import end_of_turn, vad
from parley_stt.jobs import serve_transcriptions
from parley_stt.providers.registry import REGISTRY, get_provider
from parley_stt.session import open_session
from parley_stt.settings import SttSettings


async def _main(runtime: Runtime) -> None:
    worker = SessionWorker("stt", runtime.worker_id, runtime.bus, open_session(runtime))
    # Not ready (503) until it takes sessions: its models load first.
    runtime.checks["sessions"] = worker.ready
    # The VAD runs on every session's every frame, the end-of-turn model at every pause: load
    # them before taking sessions.
    await asyncio.to_thread(vad.preload)
    await asyncio.to_thread(end_of_turn.preload)
    await prepare_providers(runtime, REGISTRY)
    await serve_transcriptions(runtime.bus, runtime.worker_id)
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(warm_up("local", lambda: get_provider(SttName.LOCAL)))
            tg.create_task(worker.run(runtime.stopping, runtime.settings.drain_s))
    finally:
        await REGISTRY.aclose()


def main() -> None:
    """Run one stt worker."""
    run("stt", SttSettings(), _main, use_db=False, drains=True)


if __name__ == "__main__":
    main()
