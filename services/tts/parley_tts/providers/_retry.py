"""Retrying a synthesis that failed before its first audio byte, the one moment a retry is
invisible to the listener. After audio has gone out a failure is final (the session's
fallback chain takes over), and a provider asking for a long wait is not waited for."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass

from parley_common.errors import ParleyError, ProviderRateLimitedError
from parley_common.vendor_errors import QUOTA_EXCEEDED

log = logging.getLogger(__name__)

__all__ = ["NO_RETRY", "RetryPolicy", "retry_before_first_audio"]

DEFAULT_BACKOFF_S = 0.2


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``retries`` extra attempts, each after the provider's retry-after (when at most
    ``max_wait_s``) or ``backoff_s``."""

    retries: int = 1
    max_wait_s: float = 2.0
    backoff_s: float = DEFAULT_BACKOFF_S

    def wait_before_retry(self, error: ParleyError, attempt: int) -> float | None:
        """Seconds to wait before retrying after ``error`` on ``attempt`` (0-based), or None
        when it must not be retried."""
        if attempt >= self.retries or not error.retryable or error.code == QUOTA_EXCEEDED:
            return None
        if isinstance(error, ProviderRateLimitedError):
            if error.retry_after_s is None:
                return self.backoff_s
            return error.retry_after_s if error.retry_after_s <= self.max_wait_s else None
        return self.backoff_s


NO_RETRY = RetryPolicy(retries=0)


async def retry_before_first_audio(
    attempt: Callable[[], AsyncGenerator[bytes, None]], policy: RetryPolicy
) -> AsyncGenerator[bytes, None]:
    """Yield the audio of ``attempt()``, starting it again while it fails before its first
    non-empty chunk and ``policy`` allows. Closing this generator closes the attempt."""
    tries = 0
    while True:
        stream = attempt()
        async with contextlib.aclosing(stream):
            try:
                first = b""
                while not first:
                    first = await anext(stream)
            except StopAsyncIteration:
                return
            except ParleyError as error:
                wait = policy.wait_before_retry(error, tries)
                if wait is None:
                    raise
                log.info(
                    "retrying synthesis",
                    extra={"provider": error.provider, "code": error.code, "wait_s": wait},
                )
            else:
                yield first
                async for chunk in stream:
                    yield chunk
                return
        tries += 1
        await asyncio.sleep(wait)
