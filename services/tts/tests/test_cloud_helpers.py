"""What the cloud TTS adapters share: error mapping, the retry policy, the text ledger, the
voices cache."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import pytest

from parley_common.errors import (
    BadInputError,
    ParleyTimeoutError,
    ProviderAuthError,
    ProviderFailedError,
    ProviderRateLimitedError,
)
from parley_tts.providers import _errors
from parley_tts.providers._cache import TtlCache
from parley_tts.providers._input_stream import TextLedger, closest_rate, http_to_ws
from parley_tts.providers._retry import RetryPolicy, retry_before_first_audio


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        (401, None, ProviderAuthError),
        (403, None, ProviderAuthError),
        (401, "quota_exceeded", ProviderRateLimitedError),
        (400, "invalid_api_key", ProviderAuthError),
        (404, None, BadInputError),
        (400, "voice_not_found", BadInputError),
        (422, None, BadInputError),
        (429, None, ProviderRateLimitedError),
        (408, None, ParleyTimeoutError),
        (500, None, ProviderFailedError),
        (529, None, ProviderFailedError),
    ],
)
def test_status_mapping(status: int, reason: str | None, expected: type[Exception]) -> None:
    error = _errors.from_status("acme", status, reason=reason)
    assert type(error) is expected
    assert error.provider == "acme"
    assert "acme" in error.message


def test_retry_after_seconds_milliseconds_and_dates() -> None:
    assert _errors.retry_after_s({"Retry-After": "3"}) == 3
    assert _errors.retry_after_s({"retry-after-ms": "250"}) == 0.25
    assert _errors.retry_after_s({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0
    assert _errors.retry_after_s({"retry-after": "soon"}) is None
    assert _errors.retry_after_s(None) is None
    error = _errors.from_status("acme", 429, headers={"retry-after": "2"})
    assert isinstance(error, ProviderRateLimitedError)
    assert error.retry_after_s == 2


def test_retry_policy() -> None:
    policy = RetryPolicy(retries=1, max_wait_s=2, backoff_s=0.1)
    assert (
        policy.wait_before_retry(_errors.from_status("a", 429, headers={"retry-after": "1"}), 0)
        == 1
    )
    assert (
        policy.wait_before_retry(_errors.from_status("a", 429, headers={"retry-after": "9"}), 0)
        is None
    )
    assert policy.wait_before_retry(_errors.from_status("a", 503), 0) == 0.1
    assert policy.wait_before_retry(_errors.from_status("a", 503), 1) is None
    assert policy.wait_before_retry(_errors.from_status("a", 401), 0) is None
    assert (
        policy.wait_before_retry(_errors.from_status("a", 401, reason="quota_exceeded"), 0) is None
    )


async def test_no_retry_once_audio_has_gone_out() -> None:
    attempts = 0

    async def flaky() -> AsyncGenerator[bytes, None]:
        nonlocal attempts
        attempts += 1
        yield b"\x00\x00"
        raise _errors.connection_lost("acme")

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
            raise _errors.from_status("acme", 503)
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
            raise _errors.connection_lost("acme")
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
