"""``python -m parley_clone``: the voice-cloning service.

It runs with its bus connection, database pool and health endpoint so that deployments and
``parley up`` include it; the cloning API itself (custom voices from audio samples) is its
own capability and is not built yet.
"""

from __future__ import annotations

import asyncio

from parley_clone.settings import CloneSettings
from parley_common.runtime import Runtime, run


async def _main(runtime: Runtime) -> None:
    await asyncio.Event().wait()


def main() -> None:
    """Run the clone service."""
    run("clone", CloneSettings(), _main, use_db=True)


if __name__ == "__main__":
    main()
