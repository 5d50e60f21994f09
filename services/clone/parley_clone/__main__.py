"""``python -m parley_clone``: the voice-cloning service.

It takes clone, delete and resolve jobs from the ``clone`` queue group (see ``cloner``), with
its bus connection, database pool and health endpoint; ``/health`` is ready once its
providers are built.
"""

from __future__ import annotations

from parley_clone.cloner import Cloner
from parley_clone.providers.registry import REGISTRY, get_cloner
from parley_clone.settings import CloneSettings
from parley_clone.store import VoiceRows
from parley_common.providers import prepare_providers
from parley_common.runtime import Runtime, run


async def _main(runtime: Runtime) -> None:
    assert runtime.pool is not None  # run with use_db=True
    settings = runtime.settings
    assert isinstance(settings, CloneSettings)
    await prepare_providers(runtime, REGISTRY)
    cloner = Cloner(VoiceRows(runtime.pool), settings, get_cloner)
    await cloner.serve(runtime.bus, runtime.worker_id)
    try:
        await cloner.run(runtime.stopping)
    finally:
        await REGISTRY.aclose()


def main() -> None:
    """Run the clone service."""
    run("clone", CloneSettings(), _main, use_db=True, drains=True)


if __name__ == "__main__":
    main()
