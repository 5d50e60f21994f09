"""``python -m parley_analytics``: the durable event consumer."""

from __future__ import annotations

from parley_analytics.audio_store import storing_audio
from parley_analytics.consumer import consume
from parley_analytics.recorder import Recorder
from parley_analytics.settings import AnalyticsSettings
from parley_common.runtime import Runtime, run


async def _main(runtime: Runtime) -> None:
    assert runtime.pool is not None
    assert isinstance(runtime.settings, AnalyticsSettings)
    async with storing_audio(runtime.bus, runtime.pool, enabled=runtime.settings.store_audio):
        await consume(runtime.bus, Recorder(runtime.pool), runtime.stopping)


def main() -> None:
    """Run the analytics consumer."""
    run("analytics", AnalyticsSettings(), _main, use_db=True)


if __name__ == "__main__":
    main()
