"""Cloud STT failures in Parley's error tree, worded for the person who reads them.

Each adapter catches its SDK's or socket's failures and asks its :class:`Vendor` for the Parley
error. Messages name the provider and what to do; they never carry the key nor the vendor's
own text (which may echo the request or internals).
"""

from __future__ import annotations

import contextlib
import email.utils
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from parley_common.errors import (
    BadInputError,
    ParleyError,
    ParleyTimeoutError,
    ProviderAuthError,
    ProviderFailedError,
    ProviderRateLimitedError,
)

__all__ = ["Vendor", "retry_after_s", "sdk_errors"]

_REJECTED_STATUS = frozenset({400, 404, 413, 415, 422})
_OTHER_STT = "or choose another STT provider"


def retry_after_s(headers: Mapping[str, str] | None) -> float | None:
    """The provider's wait hint: ``retry-after-ms``, else ``retry-after`` in seconds or as an
    HTTP date; None when absent or unreadable."""
    if not headers:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            return max(0.0, float(raw) * scale)
        except ValueError:
            moment = email.utils.parsedate_tz(raw) if name == "retry-after" else None
            if moment is not None:
                return max(0.0, email.utils.mktime_tz(moment) - time.time())
    return None


@dataclass(frozen=True, slots=True)
class Vendor:
    """How one STT provider is named in errors: ``name`` is the provider a session chose (set
    on every error), ``label`` what people call the vendor, ``key_env`` where its key is."""

    name: str
    label: str
    key_env: str

    def from_status(
        self, status: int, headers: Mapping[str, str] | None = None, *, model: str = ""
    ) -> ParleyError:
        """The error for an HTTP error answer (also a rejected WebSocket upgrade)."""
        what = f"HTTP {status}"
        if status in (401, 403):
            return self.refused_key(what)
        if status == 429:
            wait = retry_after_s(headers)
            hint = f"retry in {wait:.3g} s" if wait is not None else "try again shortly"
            return ProviderRateLimitedError(
                f"{self.label} is rate limiting this key ({what}): {hint}, {_OTHER_STT}",
                retry_after_s=wait,
                provider=self.name,
            )
        if status in _REJECTED_STATUS:
            model_hint = f"check that model '{model}' exists and" if model else "check that"
            return BadInputError(
                f"{self.label} rejected the transcription request ({what}): {model_hint} "
                "this key may use it",
                provider=self.name,
            )
        return ProviderFailedError(
            f"{self.label} failed to transcribe ({what}): try again, {_OTHER_STT}",
            provider=self.name,
        )

    def refused_key(self, what: str) -> ProviderAuthError:
        """The key was refused (HTTP 401/403, an auth close code)."""
        return ProviderAuthError(
            f"{self.label} refused the API key ({what}): check {self.key_env}",
            provider=self.name,
        )

    def timed_out(self, what: str, timeout_s: float) -> ParleyTimeoutError:
        """``what`` (e.g. "the final transcript") did not come within ``timeout_s``."""
        return ParleyTimeoutError(
            f"{self.label} did not return {what} within {timeout_s:g} s: try again, {_OTHER_STT}",
            provider=self.name,
        )

    def connection_lost(self) -> ProviderFailedError:
        """The connection failed or broke off mid-utterance."""
        return ProviderFailedError(
            f"the connection to {self.label} failed or was lost mid-utterance: try again, "
            f"{_OTHER_STT}",
            provider=self.name,
        )

    def malformed(self) -> ProviderFailedError:
        """A reply or stream message could not be read."""
        return ProviderFailedError(
            f"{self.label} sent a malformed message: try again, {_OTHER_STT}",
            provider=self.name,
        )

    def closed(self, code: int, meaning: str) -> ProviderFailedError:
        """The provider closed the stream with ``code`` (``meaning`` says what it stands for)."""
        return ProviderFailedError(
            f"{self.label} closed the stream (code {code}: {meaning}): try again, {_OTHER_STT}",
            provider=self.name,
        )

    def reported(self, what: str) -> ProviderFailedError:
        """The provider sent an error message mid-stream; ``what`` is its category, never
        its free text."""
        return ProviderFailedError(
            f"{self.label} reported an error ({what}): try again, {_OTHER_STT}",
            provider=self.name,
        )


@contextlib.contextmanager
def sdk_errors(
    vendor: Vendor,
    *,
    status: type[Exception],
    connection: type[Exception],
    timeout: type[Exception],
    transport: tuple[type[Exception], ...] = (),
    timeout_s: float,
    model: str,
) -> Iterator[None]:
    """Translate what an OpenAI-style SDK (Stainless: ``openai``, ``groq``) raises inside the
    block: its status, connection and timeout errors by class, ``transport`` errors (the HTTP
    library's, raised raw while a stream is read) as a lost connection, and an undecodable
    reply (``ValueError``) as malformed."""
    try:
        yield
    except ParleyError:
        raise
    except timeout as exc:  # before ``connection``: the SDKs' timeout error subclasses it
        raise vendor.timed_out("a transcript", timeout_s) from exc
    except connection as exc:
        raise vendor.connection_lost() from exc
    except status as exc:
        code = getattr(exc, "status_code", 0)
        headers = getattr(getattr(exc, "response", None), "headers", None)
        raise vendor.from_status(int(code), headers, model=model) from exc
    except transport as exc:
        raise vendor.connection_lost() from exc
    except ValueError as exc:  # JSON that does not decode, a reply of the wrong shape
        raise vendor.malformed() from exc
