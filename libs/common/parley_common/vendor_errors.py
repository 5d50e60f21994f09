"""Cloud vendors' failures in Parley's error tree: one status mapping and one wording for
every cloud adapter, whatever it serves (LLM, STT, TTS).

An adapter names its vendor once (:class:`Vendor`) and its client library's exception classes
once (:class:`SdkErrors`); the rest is here. An HTTP error answer becomes the error its status
(and the vendor's machine-readable error kind, where that says more) calls for; a timeout, a
lost connection and an unreadable reply have their own. Messages name the provider and what
to do. They never carry the API key nor the vendor's own text (which may echo the request or
internals): only the status, and an error kind when it is a plain identifier.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import math
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Literal

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
    "Capability",
    "SdkErrors",
    "Vendor",
    "error_kind",
    "retry_after_s",
]

Capability = Literal["LLM", "STT", "TTS"]

#: The code of a rate limit that waiting does not lift (credits used up): never retried.
QUOTA_EXCEEDED = "provider_quota_exceeded"

# Error kinds vendors put in their bodies and error events (Anthropic's ``error.type``,
# OpenAI's ``error.code``, ElevenLabs' ``detail.status``), where they say more than the status.
_AUTH_KINDS = frozenset({"authentication_error", "permission_error", "invalid_api_key"})
_RATE_KINDS = frozenset({"rate_limit_error", "rate_limit_exceeded"})
_QUOTA_KINDS = frozenset({"insufficient_quota", "quota_exceeded"})
_OVERLOADED_KINDS = frozenset({"overloaded_error"})
_UNKNOWN_KINDS = frozenset({"model_not_found", "voice_not_found"})
_OVERLOADED_STATUS = 529  # Anthropic's
# What an error kind must look like to be shown: an identifier, never a sentence.
_SHOWABLE_KIND = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def retry_after_s(headers: Mapping[str, str] | None) -> float | None:
    """The vendor's wait hint in seconds: ``retry-after-ms``, else ``retry-after`` as seconds
    or as an HTTP date (in the past: 0); None when absent or unreadable."""
    if not headers:
        return None
    lowered = {name.lower(): value for name, value in headers.items()}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = lowered.get(name)
        if raw is None:
            continue
        try:
            wait = float(raw) * scale
        except ValueError:
            moment = email.utils.parsedate_tz(raw) if name == "retry-after" else None
            if moment is None:
                continue
            wait = email.utils.mktime_tz(moment) - time.time()
        if math.isfinite(wait):
            return max(0.0, wait)
    return None


def error_kind(body: object) -> str | None:
    """The machine-readable kind of an error body or event: OpenAI's ``error.code`` (else
    ``error.type``), Anthropic's ``error.type``, ElevenLabs' ``detail.status``; ``body`` may be
    the whole body or its ``error`` part. None when there is none."""
    if not isinstance(body, Mapping):
        return None
    inner: object = body
    for part in ("error", "detail"):
        if part in body:
            inner = body[part]
            break
    if not isinstance(inner, Mapping):
        return None
    for field in ("code", "status", "type"):
        kind = inner.get(field)
        if isinstance(kind, str) and kind:
            return kind
    return None


def _shown(kind: str | None) -> str | None:
    return kind if kind is not None and _SHOWABLE_KIND.fullmatch(kind) else None


@dataclass(frozen=True, slots=True)
class Vendor:
    """How one cloud provider is named in errors: ``name`` is the provider id a session chose
    (set on every error), ``label`` what people call the vendor, ``key_env`` the variable its
    key comes from (None: the server's credentials), ``capability`` what another provider
    would be chosen for."""

    name: str
    label: str
    key_env: str | None
    capability: Capability

    def from_status(
        self,
        status: int | None,
        headers: Mapping[str, str] | None = None,
        *,
        kind: str | None = None,
        model: str = "",
    ) -> ParleyError:
        """The error for an HTTP error answer (or a refused WebSocket upgrade): 401/403 a
        refused key, 429 a rate limit (with its retry-after), 408 a timeout, 4xx bad input,
        5xx/529 and the rest a failure. A known ``kind`` (see :func:`error_kind`) comes first:
        ElevenLabs answers a used-up quota with 401. ``model`` is named when it was rejected."""
        if status is None:
            return self._classify("no HTTP status", 0, kind, headers, model)
        if status < 400:  # an error event of a stream that had answered 200 (Anthropic's SDK)
            return self.reported(kind, model=model)
        return self._classify(f"HTTP {status}", status, kind, headers, model)

    def reported(self, kind: str | None, *, model: str = "") -> ParleyError:
        """The error for an error event in a stream that was open (no status; ``kind`` says
        what happened, and is shown only when it is a plain identifier)."""
        shown = _shown(kind)
        what = f"error event {shown}" if shown else "error event"
        return self._classify(what, 0, kind, None, model)

    def refused_key(self, what: str) -> ProviderAuthError:
        """The key was refused; ``what`` says how (``HTTP 401``, ``close code 4001``)."""
        check = f"check {self.key_env}" if self.key_env else "check the server's credentials"
        return ProviderAuthError(
            f"{self.label} refused the API key ({what}): {check}", provider=self.name
        )

    def rate_limited(self, what: str, wait_s: float | None = None) -> ProviderRateLimitedError:
        """The vendor asked to slow down, ``wait_s`` being its hint when it gave one."""
        hint = f"retry in {wait_s:.3g} s" if wait_s is not None else "try again shortly"
        return ProviderRateLimitedError(
            f"{self.label} is rate limiting this key ({what}): {hint}, {self._another}",
            retry_after_s=wait_s,
            provider=self.name,
        )

    def quota_exceeded(self, what: str) -> ProviderRateLimitedError:
        """The key's quota (credits) is used up: a rate limit that waiting does not lift."""
        return ProviderRateLimitedError(
            f"{self.label} quota exceeded ({what}): add credits, {self._another}",
            provider=self.name,
            code=QUOTA_EXCEEDED,
        )

    def timed_out(self, timeout_s: float | None, *, what: str = "an answer") -> ParleyTimeoutError:
        """``what`` did not come within ``timeout_s`` (None: the deadline is not known here)."""
        within = f"within {timeout_s:g} s" if timeout_s is not None else "in time"
        return ParleyTimeoutError(
            f"{self.label} did not return {what} {within}: try again, {self._another}",
            provider=self.name,
        )

    def connection_lost(self) -> ProviderFailedError:
        """The connection could not be made, or broke off before the answer was complete."""
        return ProviderFailedError(
            f"lost the connection to {self.label}: try again, {self._another}", provider=self.name
        )

    def malformed(self) -> ProviderFailedError:
        """A reply, stream event or message could not be read."""
        return ProviderFailedError(
            f"{self.label} sent a malformed reply: try again, {self._another}", provider=self.name
        )

    def closed(self, code: int, meaning: str) -> ProviderFailedError:
        """The vendor closed a stream with ``code`` (``meaning``: what it documents for it)."""
        return ProviderFailedError(
            f"{self.label} closed the stream (code {code}: {meaning}): try again, {self._another}",
            provider=self.name,
        )

    @property
    def _another(self) -> str:
        return f"or choose another {self.capability} provider"

    def _classify(
        self,
        what: str,
        status: int,
        kind: str | None,
        headers: Mapping[str, str] | None,
        model: str,
    ) -> ParleyError:
        if kind in _QUOTA_KINDS:
            return self.quota_exceeded(what)
        if status in (401, 403) or kind in _AUTH_KINDS:
            return self.refused_key(what)
        if status == 429 or kind in _RATE_KINDS:
            return self.rate_limited(what, retry_after_s(headers))
        if status == _OVERLOADED_STATUS or kind in _OVERLOADED_KINDS:
            return ProviderFailedError(
                f"{self.label} is overloaded ({what}): try again shortly, {self._another}",
                provider=self.name,
            )
        if status == 408:
            return ParleyTimeoutError(
                f"{self.label} timed out the request ({what}): try again, {self._another}",
                provider=self.name,
            )
        if kind == "voice_not_found":
            return BadInputError(
                f"{self.label} does not know this voice ({what}): choose another voice",
                provider=self.name,
            )
        if 400 <= status < 500 or kind in _UNKNOWN_KINDS:
            check = f"that model '{model}' exists and " if model else ""
            return BadInputError(
                f"{self.label} rejected the request ({what}): check {check}"
                "that this key may use it",
                provider=self.name,
            )
        return ProviderFailedError(
            f"{self.label} failed ({what}): try again, {self._another}", provider=self.name
        )


@dataclass(frozen=True, slots=True)
class SdkErrors:
    """What one vendor client library raises, sorted by meaning: ``status`` an HTTP error
    answer (read for its ``status_code``, headers and body, on the exception or its
    ``response``), ``timeouts``, ``connection`` failures, ``event`` an error event in an open
    stream (read for its ``body``). A ``ValueError`` is a reply that could not be decoded."""

    status: tuple[type[Exception], ...] = ()
    timeouts: tuple[type[Exception], ...] = ()
    connection: tuple[type[Exception], ...] = ()
    event: tuple[type[Exception], ...] = ()

    @classmethod
    def stainless(cls, sdk: ModuleType, http: ModuleType) -> SdkErrors:
        """The errors of an SDK generated by Stainless (``openai``, ``anthropic``, ``groq``:
        ``APIStatusError``, ``APITimeoutError``, ``APIConnectionError``, ``APIError``) and of
        the HTTP library it runs on, whose own errors escape when a streamed body breaks off."""
        return cls(
            status=(_exception(sdk, "APIStatusError"),),
            timeouts=(_exception(sdk, "APITimeoutError"), _exception(http, "TimeoutException")),
            connection=(
                _exception(sdk, "APIConnectionError"),
                _exception(http, "TransportError"),
            ),
            event=(_exception(sdk, "APIError"),),
        )

    @contextlib.contextmanager
    def translated(
        self,
        vendor: Vendor,
        *,
        model: str = "",
        timeout_s: float | None = None,
        waiting_for: str = "an answer",
    ) -> Iterator[None]:
        """Raise what the block raises of this library as ``vendor``'s Parley error (``from``
        the original); ``waiting_for`` is what a timeout did not return."""
        try:
            yield
        except self.timeouts as exc:  # first: the SDKs' timeouts subclass connection errors
            raise vendor.timed_out(timeout_s, what=waiting_for) from exc
        except self.status as exc:  # before ``connection``: a refused WebSocket upgrade is one
            raise vendor.from_status(
                _status_code(exc), _headers(exc), kind=error_kind(_body(exc)), model=model
            ) from exc
        except self.connection as exc:
            raise vendor.connection_lost() from exc
        except self.event as exc:  # last: the SDKs' other errors subclass it
            raise vendor.reported(error_kind(_body(exc)), model=model) from exc
        except ValueError as exc:
            raise vendor.malformed() from exc


def _exception(module: ModuleType, name: str) -> type[Exception]:
    found = getattr(module, name, None)
    if not (isinstance(found, type) and issubclass(found, Exception)):
        raise TypeError(f"{module.__name__}.{name} is not an exception class")
    return found


def _holders(exc: Exception) -> tuple[object, ...]:
    """The exception and the HTTP response it carries, where its status and headers are."""
    return (exc, getattr(exc, "response", None))


def _status_code(exc: Exception) -> int | None:
    for holder in _holders(exc):
        status = getattr(holder, "status_code", None)
        if isinstance(status, int):
            return status
    return None


def _headers(exc: Exception) -> Mapping[str, str] | None:
    for holder in _holders(exc):
        headers = getattr(holder, "headers", None)
        if isinstance(headers, Mapping):
            return headers
    return None


def _body(exc: Exception) -> object:
    for holder in _holders(exc):
        body = getattr(holder, "body", None)
        if isinstance(body, bytes | bytearray):
            try:
                return json.loads(body) if body else None
            except ValueError:
                return None
        if body is not None:
            return body
    return None
