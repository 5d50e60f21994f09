"""Cloud LLM failures in Parley's error tree, worded for the person who reads them.

Each adapter catches its SDK's exceptions and asks its :class:`Vendor` for the Parley error;
the messages name the provider and what to do, and never carry the key or the vendor's own
text (which may echo request content or internals).
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, cast

from parley_common.errors import (
    BadInputError,
    ParleyError,
    ParleyTimeoutError,
    ProviderAuthError,
    ProviderFailedError,
    ProviderRateLimitedError,
)

# Error types some providers put in the body (Anthropic's "type", OpenAI's "type"/"code"),
# which say more than the status, and the only thing a mid-stream error event carries.
_AUTH_TYPES = frozenset({"authentication_error", "permission_error", "invalid_api_key"})
_RATE_TYPES = frozenset({"rate_limit_error", "rate_limit_exceeded", "insufficient_quota"})
_OVERLOADED_TYPES = frozenset({"overloaded_error"})
_OVERLOADED_STATUS = 529
_REJECTED_STATUS = frozenset({400, 404, 413, 422})


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """The provider's wait hint: ``retry-after-ms``, else ``retry-after`` in seconds or as an
    HTTP date; None when absent or unreadable."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            return max(0.0, float(raw) * scale)
        except ValueError:
            if name == "retry-after":
                moment = email.utils.parsedate_tz(raw)
                if moment is not None:
                    return max(0.0, email.utils.mktime_tz(moment) - time.time())
    return None


def error_type(body: object) -> str | None:
    """The machine-readable kind of an error body: OpenAI's ``code`` (else ``type``) and
    Anthropic's ``error.type``, whether ``body`` is the whole body or its ``error`` part."""
    if not isinstance(body, Mapping):
        return None
    inner = body.get("error", body)
    if not isinstance(inner, Mapping):
        return None
    kind = inner.get("code") or inner.get("type")
    return kind if isinstance(kind, str) else None


@dataclass(frozen=True, slots=True)
class Vendor:
    """How one cloud LLM provider is named in errors: ``name`` is its provider id (set on
    every error), ``label`` what people call it, ``key_env`` where its key comes from."""

    name: str
    label: str
    key_env: str | None

    def _check_key(self) -> str:
        return f"check {self.key_env}" if self.key_env else "check the server's credentials"

    def from_status(
        self, status: int, headers: Mapping[str, str], error_type: str | None, model: str
    ) -> ParleyError:
        """The error for an HTTP error answer (or a mid-stream error event, whose status is
        the stream's 200 and whose ``error_type`` says what happened)."""
        what = f"HTTP {status}" if status >= 400 else f"error event {error_type or 'unknown'}"
        if status in (401, 403) or error_type in _AUTH_TYPES:
            return ProviderAuthError(
                f"{self.label} refused the API key ({what}): {self._check_key()}",
                provider=self.name,
            )
        if status == 429 or error_type in _RATE_TYPES:
            wait = retry_after_s(headers) if status == 429 else None
            hint = f"retry in {wait:.3g} s" if wait is not None else "try again shortly"
            return ProviderRateLimitedError(
                f"{self.label} is rate limiting this key ({what}): {hint}, "
                "or choose another LLM provider",
                retry_after_s=wait,
                provider=self.name,
            )
        if status == _OVERLOADED_STATUS or error_type in _OVERLOADED_TYPES:
            return ProviderFailedError(
                f"{self.label} is overloaded ({what}): try again shortly, "
                "or choose another LLM provider",
                provider=self.name,
            )
        if status in _REJECTED_STATUS:
            return BadInputError(
                f"{self.label} rejected the request ({what}): check that model '{model}' "
                "exists and this key may use it",
                provider=self.name,
            )
        return ProviderFailedError(
            f"{self.label} failed to answer ({what}): try again, or choose another LLM provider",
            provider=self.name,
        )

    def timed_out(self, timeout_s: float) -> ParleyTimeoutError:
        """The provider went quiet for longer than the configured timeout."""
        return ParleyTimeoutError(
            f"{self.label} did not answer within {timeout_s:g} s: try again, "
            "or choose another LLM provider",
            provider=self.name,
        )

    def connection_lost(self) -> ProviderFailedError:
        """The connection failed or broke off (before or during the answer)."""
        return ProviderFailedError(
            f"the connection to {self.label} failed or was lost mid-answer: try again",
            provider=self.name,
        )

    def malformed(self) -> ProviderFailedError:
        """The stream carried an event the SDK could not read."""
        return ProviderFailedError(
            f"{self.label} sent a malformed stream event: try again", provider=self.name
        )


class _StreamError(Protocol):
    body: object


class _Response(Protocol):
    @property
    def headers(self) -> Mapping[str, str]: ...


class _StatusError(_StreamError, Protocol):
    status_code: int

    @property
    def response(self) -> _Response: ...


@dataclass(frozen=True, slots=True)
class SdkErrors:
    """The exception classes of one vendor SDK (OpenAI's, Anthropic's and Groq's are
    generated alike: ``APIStatusError`` with ``status_code``/``response``/``body``, the
    ``APIError`` of a mid-stream error event, timeout and connection errors) plus its HTTP
    library's, which escape the SDK when a stream breaks off."""

    status: type[Exception]
    stream_error: type[Exception]
    timeouts: tuple[type[Exception], ...]
    connection: tuple[type[Exception], ...]

    @property
    def caught(self) -> tuple[type[Exception], ...]:
        """What an adapter catches and translates; ValueError is an event that is not JSON."""
        return (self.status, self.stream_error, *self.timeouts, *self.connection, ValueError)

    def translate(
        self, exc: Exception, vendor: Vendor, *, model: str, timeout_s: float
    ) -> ParleyError:
        """The Parley error for ``exc``, one of :attr:`caught`."""
        if isinstance(exc, self.status):
            answer = cast("_StatusError", exc)
            return vendor.from_status(
                answer.status_code, answer.response.headers, error_type(answer.body), model
            )
        if isinstance(exc, self.timeouts):
            return vendor.timed_out(timeout_s)
        if isinstance(exc, self.connection):
            return vendor.connection_lost()
        if isinstance(exc, self.stream_error):
            return vendor.from_status(200, {}, error_type(cast("_StreamError", exc).body), model)
        return vendor.malformed()
