"""``python -m parley_llm``: a llm worker taking sessions from its queue group."""

from __future__ import annotations

import asyncio

from parley_common.contracts.session import LlmProvider as LlmName
from parley_common.providers import prepare_providers
from parley_common.runtime import Runtime, run
from parley_common.warmup import warm_up
from parley_common.workers import SessionWorker
from parley_llm.providers.registry import REGISTRY, get_provider
from parley_llm.session import open_session
from parley_llm.settings import LlmSettings
from parley_llm.summary import serve_summaries


async def _main(runtime: Runtime) -> None:
    worker = SessionWorker("llm", runtime.worker_id, runtime.bus, open_session(runtime))
    # Not ready (503) until it takes sessions: its models load first.
    runtime.checks["sessions"] = worker.ready
    await prepare_providers(runtime, REGISTRY)
    assert runtime.pool is not None  # use_db below
    await serve_summaries(runtime.bus, runtime.pool, busy=worker.busy)
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(warm_up("local", lambda: get_provider(LlmName.LOCAL)))
            tg.create_task(worker.run(runtime.stopping, runtime.settings.drain_s))
    finally:
        await REGISTRY.aclose()


def main() -> None:
    """Run one llm worker."""
    run("llm", LlmSettings(), _main, use_db=True, drains=True)


if __name__ == "__main__":
    main()
