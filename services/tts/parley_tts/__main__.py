"""``python -m parley_tts``: a tts worker taking sessions from its queue group."""

from __future__ import annotations

import asyncio

from parley_common.contracts.session import TtsProvider as TtsName
from parley_common.providers import prepare_providers
from parley_common.runtime import Runtime, run
from parley_common.warmup import warm_up
from parley_common.workers import SessionWorker
from parley_tts.jobs import serve_syntheses
from parley_tts.providers.registry import REGISTRY, get_provider
from parley_tts.session import open_session
from parley_tts.settings import TtsSettings
from parley_tts.voices import serve_voices


async def _main(runtime: Runtime) -> None:
    worker = SessionWorker("tts", runtime.worker_id, runtime.bus, open_session(runtime))
    # Not ready (503) until it takes sessions: its models load first.
    runtime.checks["sessions"] = worker.ready
    await prepare_providers(runtime, REGISTRY)
    await serve_voices(runtime.bus)
    await serve_syntheses(runtime.bus, runtime.worker_id)
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(warm_up("local", lambda: get_provider(TtsName.LOCAL)))
            tg.create_task(worker.run(runtime.stopping, runtime.settings.drain_s))
    finally:
        await REGISTRY.aclose()


def main() -> None:
    """Run one tts worker."""
    run("tts", TtsSettings(), _main, use_db=False, drains=True)


if __name__ == "__main__":
    main()
