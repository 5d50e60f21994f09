"""Parley's one error tree.

Domain code, providers and models raise these; nothing else crosses a boundary. Each class
has a stable ``code`` (clients switch on it) and a ``message`` written for the person who
reads it, never the ``str()`` of a vendor exception. The gateway maps each class to an HTTP
status and a WebSocket error event in one place; vendor SDK exceptions are translated into
this tree at the adapter that calls the SDK (``raise ... from exc``).
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "BadInputError",
    "ConflictError",
    "ForbiddenError",
    "ModelNotInstalledError",
    "NotFoundError",
    "ParleyError",
    "ParleyTimeoutError",
    "ProviderAuthError",
    "ProviderFailedError",
    "ProviderRateLimitedError",
    "ProviderUnavailableError",
    "RateLimitedError",
    "ServiceUnavailableError",
    "UnauthenticatedError",
    "safe_message",
]


class ParleyError(Exception):
    """Base of every error Parley reports. ``code`` overrides the class's default code where
    a more specific one helps a client (``session_not_found`` rather than ``not_found``)."""

    code: ClassVar[str] = "internal_error"
    #: Whether retrying the same request later may succeed.
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        provider: str | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.details = details or []
        if code is not None:
            self.code = code  # type: ignore[misc]  # an instance may narrow its class's code


class BadInputError(ParleyError):
    """The caller sent something Parley cannot accept (schema, audio, size)."""

    code = "bad_input"


class NotFoundError(ParleyError):
    """The thing asked for does not exist (or is not the caller's)."""

    code = "not_found"


class UnauthenticatedError(ParleyError):
    """No credentials, or credentials Parley does not accept (missing, expired, forged
    token). The message says which, never what the token held."""

    code = "unauthenticated"


class ForbiddenError(ParleyError):
    """The caller is known but may not do this (a user acting as another, no admin scope)."""

    code = "forbidden"


class RateLimitedError(ParleyError):
    """The caller exceeded one of Parley's own limits; ``retry_after_s`` says when the
    window reopens."""

    code = "rate_limited"
    retryable = True

    def __init__(self, message: str, *, retry_after_s: float, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after_s = retry_after_s


class ConflictError(ParleyError):
    """The request contradicts the current state (an ended session, a duplicate)."""

    code = "conflict"


class ServiceUnavailableError(ParleyError):
    """No worker of a Parley service answered (not running, or all busy)."""

    code = "service_unavailable"
    retryable = True


class ParleyTimeoutError(ParleyError):
    """Something did not answer within its deadline."""

    code = "timeout"
    retryable = True


class ProviderUnavailableError(ParleyError):
    """A session asked for a provider this deployment cannot serve: unknown, no API key,
    extra not installed, or a test double while they are disabled. The message says which."""

    code = "provider_unavailable"


class ModelNotInstalledError(ProviderUnavailableError):
    """A local model's files (a PyPI package) are missing or damaged; the message says how
    to install them. Nothing is ever downloaded from a model hub instead."""

    code = "model_not_installed"


class ProviderFailedError(ParleyError):
    """A provider was reached but failed: 5xx, overloaded, malformed reply, connection lost."""

    code = "provider_failed"
    retryable = True


class ProviderAuthError(ProviderFailedError):
    """The provider refused the credentials (401/403): the key is wrong or lacks access."""

    code = "provider_auth"
    retryable = False


class ProviderRateLimitedError(ProviderFailedError):
    """The provider said slow down (429); ``retry_after_s`` is its hint, when it gave one."""

    code = "provider_rate_limited"

    def __init__(self, message: str, *, retry_after_s: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after_s = retry_after_s


def safe_message(exc: BaseException, fallback: str) -> str:
    """What a client may read about ``exc``: a ParleyError's own message, otherwise
    ``fallback`` (an unexpected exception's text may hold internals or a vendor's words)."""
    return exc.message if isinstance(exc, ParleyError) else fallback
