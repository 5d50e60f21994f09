"""``python -m parley_tts``: a tts worker taking sessions from its queue group."""

from __future__ import annotations

from parley_common.runtime import Runtime, run
from parley_common.workers import SessionWorker
from parley_tts.session import open_session
from parley_tts.settings import TtsSettings


async def _main(runtime: Runtime) -> None:
    worker = SessionWorker("tts", runtime.worker_id, runtime.bus, open_session(runtime))
    await worker.run()


def main() -> None:
    """Run one tts worker."""
    run("tts", TtsSettings(), _main, use_db=False)


if __name__ == "__main__":
    main()
