"""``python -m parley_analytics``: the durable event consumer."""

from __future__ import annotations

from parley_analytics.audio_store import storing_audio
from parley_analytics.consumer import consume
from parley_analytics.pricing import PriceTable, PriceTableError, load_prices
from parley_analytics.recorder import Recorder
from parley_analytics.settings import AnalyticsSettings
from parley_common.runtime import Runtime, ServiceMain, run


def _service(prices: PriceTable) -> ServiceMain:
    async def _main(runtime: Runtime) -> None:
        assert runtime.pool is not None
        assert isinstance(runtime.settings, AnalyticsSettings)
        async with storing_audio(runtime.bus, runtime.pool, enabled=runtime.settings.store_audio):
            await consume(runtime.bus, Recorder(runtime.pool, prices), runtime.stopping)

    return _main


def main() -> None:
    """Run the analytics consumer; a price table that cannot be used stops it at start."""
    settings = AnalyticsSettings()
    try:
        prices = load_prices(settings.prices_file)  # before the loop runs: a file read
    except PriceTableError as exc:
        raise SystemExit(f"parley-analytics: PARLEY_PRICES_FILE: {exc}") from None
    run("analytics", settings, _service(prices), use_db=True)


if __name__ == "__main__":
    main()
