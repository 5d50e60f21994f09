"""What the cloud TTS adapters share: the retry policy, the text ledger, the voices cache."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import pytest

from parley_common.errors import ProviderFailedError
from parley_common.vendor_errors import Vendor
from parley_tts.providers._cache import TtlCache
from parley_tts.providers._input_stream import TextLedger, closest_rate, http_to_ws
from parley_tts.providers._retry import RetryPolicy, retry_before_first_audio

# The mapping itself is tested in libs/common/tests/test_vendor_errors.py.
ACME = Vendor("acme", "Acme", "ACME_API_KEY", "TTS")


def test_retry_policy() -> None:
    policy = RetryPolicy(retries=1, max_wait_s=2, backoff_s=0.1)
    assert policy.wait_before_retry(ACME.from_status(429, {"retry-after": "1"}), 0) == 1
    assert policy.wait_before_retry(ACME.from_status(429, {"retry-after": "9"}), 0) is None
    assert policy.wait_before_retry(ACME.from_status(503), 0) == 0.1
    assert policy.wait_before_retry(ACME.from_status(503), 1) is None
    assert policy.wait_before_retry(ACME.from_status(401), 0) is None
    assert policy.wait_before_retry(ACME.from_status(401, kind="quota_exceeded"), 0) is None


async def test_no_retry_once_audio_has_gone_out() -> None:
    attempts = 0

    async def flaky() -> AsyncGenerator[bytes, None]:
        nonlocal attempts
        attempts += 1
        yield b"\x00\x00"
        raise ACME.connection_lost()

    policy = RetryPolicy(retries=3, backoff_s=0)
    with pytest.raises(ProviderFailedError):
        async for _ in retry_before_first_audio(flaky, policy):
            pass
    assert attempts == 1


async def test_retry_before_first_audio_then_success() -> None:
    attempts = 0

    async def flaky() -> AsyncGenerator[bytes, None]:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ACME.from_status(503)
        yield b"\x01\x00"

    chunks = [c async for c in retry_before_first_audio(flaky, RetryPolicy(backoff_s=0))]
    assert chunks == [b"\x01\x00"]
    assert attempts == 2


def test_ledger_spans_by_flush_and_by_alignment() -> None:
    ledger = TextLedger()
    ledger.add("Hello. ")
    assert ledger.flush()
    assert not ledger.flush()  # nothing new
    ledger.add("Bye.")
    assert ledger.span_of_unconfirmed() == (0, 7)
    ledger.flushed()
    assert ledger.span_of_unconfirmed() == (7, 11)
    aligned = TextLedger()
    aligned.add("abcdef")
    assert aligned.advance(4) == (0, 4)
    assert aligned.advance(10) == (4, 6)  # never past what was sent


def test_rates_and_urls() -> None:
    assert closest_rate(22_050, (16_000, 24_000)) == 24_000
    assert closest_rate(20_000, (16_000, 24_000)) == 24_000  # a tie goes up
    assert closest_rate(8_000, (8000, 16_000)) == 8000
    assert http_to_ws("https://api.x.com") == "wss://api.x.com"
    assert http_to_ws("http://127.0.0.1:5") == "ws://127.0.0.1:5"


async def test_cache_fetches_once_per_ttl_and_not_failures() -> None:
    now = [0.0]
    calls = []

    async def fetch() -> list[str]:
        calls.append(now[0])
        if len(calls) == 2:
            raise ACME.connection_lost()
        return ["v"]

    cache: TtlCache[list[str]] = TtlCache(fetch, 10, clock=lambda: now[0])
    assert await cache.get() == ["v"]
    now[0] = 5
    assert await cache.get() == ["v"]
    assert len(calls) == 1
    now[0] = 11
    with pytest.raises(ProviderFailedError):
        await cache.get()
    assert await cache.get() == ["v"]
    assert len(calls) == 3
