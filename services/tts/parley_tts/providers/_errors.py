"""Vendor failures as Parley errors: one mapping of HTTP statuses and transport failures,
shared by every cloud TTS adapter. Messages name the provider and what to do, never the
key nor a vendor's own text (which may echo the request)."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping

from parley_common.errors import (
    BadInputError,
    ParleyError,
    ParleyTimeoutError,
    ProviderAuthError,
    ProviderFailedError,
    ProviderRateLimitedError,
)

__all__ = [
    "QUOTA_EXCEEDED",
    "connection_lost",
    "from_status",
    "malformed",
    "retry_after_s",
    "timed_out",
]

QUOTA_EXCEEDED = "provider_quota_exceeded"  # a rate limit that waiting does not lift


def retry_after_s(headers: Mapping[str, str] | None) -> float | None:
    """The ``retry-after`` hint in seconds (delta or HTTP date), or None."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    ms = lowered.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def from_status(
    provider: str,
    status: int,
    *,
    headers: Mapping[str, str] | None = None,
    reason: str | None = None,
) -> ParleyError:
    """The Parley error for an HTTP (or WebSocket handshake) ``status`` from ``provider``.

    ``reason`` is a vendor's machine-readable status (ElevenLabs ``detail.status``), used to
    be precise where it is known; it is never copied into the message otherwise.
    """
    # ElevenLabs answers an exhausted quota with 401: the reason comes before the status.
    if reason == "quota_exceeded":
        return ProviderRateLimitedError(
            f"{provider} quota exceeded: add credits or choose another provider",
            provider=provider,
            code=QUOTA_EXCEEDED,
        )
    if reason == "invalid_api_key" or status in (401, 403):
        return ProviderAuthError(
            f"{provider} refused the API key: check it and its permissions", provider=provider
        )
    if reason in ("voice_not_found", "model_not_found") or status == 404:
        what = "voice" if reason != "model_not_found" else "model"
        return BadInputError(f"{provider} does not know this {what}", provider=provider)
    if status == 429:
        wait = retry_after_s(headers)
        hint = f"retry in {wait:.0f} s" if wait is not None else "retry later"
        return ProviderRateLimitedError(
            f"{provider} is rate limiting requests: {hint}", retry_after_s=wait, provider=provider
        )
    if status == 408:
        return timed_out(provider)
    if 400 <= status < 500:
        return BadInputError(
            f"{provider} rejected the synthesis request (HTTP {status})", provider=provider
        )
    return ProviderFailedError(
        f"{provider} failed (HTTP {status}): retry, or choose another provider", provider=provider
    )


def timed_out(provider: str) -> ParleyTimeoutError:
    """``provider`` did not answer (or send more audio) in time."""
    return ParleyTimeoutError(f"{provider} did not answer in time", provider=provider)


def connection_lost(provider: str) -> ProviderFailedError:
    """The connection to ``provider`` failed or was cut mid-stream."""
    return ProviderFailedError(
        f"lost the connection to {provider}: retry, or choose another provider", provider=provider
    )


def malformed(provider: str) -> ProviderFailedError:
    """``provider`` sent something its protocol does not allow."""
    return ProviderFailedError(f"{provider} sent a malformed reply", provider=provider)
