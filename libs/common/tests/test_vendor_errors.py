"""The one translation of cloud vendors' failures into Parley's error tree: each status class,
the error kinds that overrule a status, retry-after in its three forms, the SDK exception
families, and messages that never carry the key nor the vendor's own words."""

from __future__ import annotations

import email.utils
import time
import types
from typing import Any

import pytest

from parley_common.errors import (
    BadInputError,
    ParleyError,
    ParleyTimeoutError,
    ProviderAuthError,
    ProviderFailedError,
    ProviderRateLimitedError,
)
from parley_common.vendor_errors import (
    QUOTA_EXCEEDED,
    SdkErrors,
    Vendor,
    error_kind,
    retry_after_s,
)

ACME = Vendor("acme", "Acme Cloud", "ACME_API_KEY", "STT")
KEY = "sk-acme-secret-0123456789"
VENDOR_TEXT = "Internal stack trace: db-7 refused the request for key sk-acme-secret-0123456789"


def assert_clean(error: ParleyError) -> None:
    """Named provider, no key, no vendor text."""
    assert error.provider == "acme"
    assert "Acme Cloud" in error.message
    assert KEY not in error.message
    assert "stack trace" not in error.message


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, BadInputError),
        (401, ProviderAuthError),
        (403, ProviderAuthError),
        (404, BadInputError),
        (408, ParleyTimeoutError),
        (409, BadInputError),
        (413, BadInputError),
        (422, BadInputError),
        (429, ProviderRateLimitedError),
        (500, ProviderFailedError),
        (502, ProviderFailedError),
        (503, ProviderFailedError),
        (529, ProviderFailedError),
        (None, ProviderFailedError),
    ],
)
def test_each_status_class(status: int | None, expected: type[ParleyError]) -> None:
    error = ACME.from_status(status)

    assert type(error) is expected
    assert_clean(error)
    if status is not None:
        assert f"HTTP {status}" in error.message


def test_a_refused_key_names_the_variable_to_check() -> None:
    assert "check ACME_API_KEY" in ACME.from_status(401).message
    anonymous = Vendor("local", "the local server", None, "LLM")
    assert "check the server's credentials" in anonymous.from_status(403).message
    assert not ACME.from_status(401).retryable


def test_failures_say_what_to_choose_instead() -> None:
    assert "choose another STT provider" in ACME.from_status(503).message
    tts = Vendor("acme", "Acme Cloud", "ACME_API_KEY", "TTS")
    assert "choose another TTS provider" in tts.connection_lost().message


def test_529_is_overloaded_and_retryable() -> None:
    error = ACME.from_status(529)
    assert "Acme Cloud is overloaded" in error.message
    assert error.retryable


def test_a_rejected_request_names_the_model() -> None:
    error = ACME.from_status(404, model="nova-9")
    assert isinstance(error, BadInputError)
    assert "model 'nova-9'" in error.message
    assert "model" not in ACME.from_status(404).message


@pytest.mark.parametrize(
    ("status", "kind", "expected", "code"),
    [
        (401, "quota_exceeded", ProviderRateLimitedError, QUOTA_EXCEEDED),
        (429, "insufficient_quota", ProviderRateLimitedError, QUOTA_EXCEEDED),
        (400, "invalid_api_key", ProviderAuthError, "provider_auth"),
        (400, "rate_limit_exceeded", ProviderRateLimitedError, "provider_rate_limited"),
        (400, "voice_not_found", BadInputError, "bad_input"),
        (500, "model_not_found", BadInputError, "bad_input"),
        (500, "overloaded_error", ProviderFailedError, "provider_failed"),
        (500, "some_new_kind", ProviderFailedError, "provider_failed"),
    ],
)
def test_a_known_error_kind_overrules_the_status(
    status: int, kind: str, expected: type[ParleyError], code: str
) -> None:
    error = ACME.from_status(status, kind=kind)

    assert type(error) is expected
    assert error.code == code
    assert_clean(error)
    assert kind not in error.message  # an HTTP answer is described by its status


def test_an_unknown_voice_says_voice() -> None:
    assert "does not know this voice" in ACME.from_status(400, kind="voice_not_found").message


def test_error_events_show_their_kind_only_when_it_is_an_identifier() -> None:
    shown = ACME.reported("SchemaError")
    assert type(shown) is ProviderFailedError
    assert "error event SchemaError" in shown.message
    hidden = ACME.reported(VENDOR_TEXT)
    assert_clean(hidden)
    assert "error event" in hidden.message
    assert type(ACME.reported("authentication_error")) is ProviderAuthError
    streamed = ACME.from_status(200, kind="overloaded_error")  # an SDK's status for an event
    assert "overloaded (error event overloaded_error)" in streamed.message
    rate = ACME.reported("rate_limit_error")
    assert isinstance(rate, ProviderRateLimitedError)
    assert rate.retry_after_s is None


@pytest.mark.parametrize(
    "body",
    [
        {"error": {"code": "insufficient_quota", "type": "invalid_request_error"}},  # OpenAI
        {"type": "error", "error": {"type": "insufficient_quota"}},  # Anthropic-shaped
        {"detail": {"status": "insufficient_quota", "message": "no credits"}},  # ElevenLabs
        {"code": "insufficient_quota"},  # an ``error`` part on its own
    ],
)
def test_error_kind_of_each_vendor_body(body: dict[str, Any]) -> None:
    assert error_kind(body) == "insufficient_quota"


@pytest.mark.parametrize(
    "body",
    [None, "quota", {"error": "free text from the vendor"}, {"detail": ["x"]}, {"error": {}}],
)
def test_error_kind_of_bodies_without_one(body: object) -> None:
    assert error_kind(body) is None


def test_retry_after_milliseconds_seconds_and_dates() -> None:
    assert retry_after_s({"retry-after-ms": "250"}) == 0.25
    assert retry_after_s({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_s({"Retry-After": "3"}) == 3
    assert retry_after_s({"retry-after": "1.5"}) == 1.5
    soon = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert retry_after_s({"retry-after": soon}) == pytest.approx(30, abs=2)
    assert retry_after_s({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0


@pytest.mark.parametrize(
    "headers",
    [
        None,
        {},
        {"retry-after": "soon"},
        {"retry-after": "inf"},
        {"retry-after-ms": "a while"},
        {"x-other": "3"},
    ],
)
def test_retry_after_absent_or_unreadable(headers: dict[str, str] | None) -> None:
    assert retry_after_s(headers) is None


def test_a_bad_retry_after_ms_falls_back_to_retry_after() -> None:
    assert retry_after_s({"retry-after-ms": "x", "retry-after": "4"}) == 4


def test_429_carries_the_retry_after() -> None:
    error = ACME.from_status(429, {"Retry-After": "7"})

    assert isinstance(error, ProviderRateLimitedError)
    assert error.retry_after_s == 7
    assert "retry in 7 s" in error.message
    unknown = ACME.from_status(429)
    assert isinstance(unknown, ProviderRateLimitedError)
    assert unknown.retry_after_s is None
    assert "try again shortly" in unknown.message


def test_timeouts_connection_malformed_and_closed() -> None:
    timed_out = ACME.timed_out(2.5, what="the final transcript")
    assert isinstance(timed_out, ParleyTimeoutError)
    assert "did not return the final transcript within 2.5 s" in timed_out.message
    assert "in time" in ACME.timed_out(None).message
    assert "lost the connection to Acme Cloud" in ACME.connection_lost().message
    assert "malformed" in ACME.malformed().message
    closed = ACME.closed(1011, "a server error")
    assert "code 1011: a server error" in closed.message
    for error in (timed_out, ACME.connection_lost(), ACME.malformed(), closed):
        assert error.retryable
        assert_clean(error)


# -- SdkErrors: the exception classes of one client library ------------------------------------


class _StatusError(Exception):
    """Shaped like a Stainless ``APIStatusError``: status and headers on ``response``."""

    def __init__(self, status: int, headers: dict[str, str], body: object) -> None:
        super().__init__(VENDOR_TEXT)
        self.response = types.SimpleNamespace(status_code=status, headers=headers)
        self.status_code = status
        self.body = body


class _FernError(Exception):
    """Shaped like a Fern ``ApiError`` (Deepgram, ElevenLabs): all on the exception."""

    def __init__(self, status: int | None, headers: dict[str, str] | None, body: object) -> None:
        super().__init__(VENDOR_TEXT)
        self.status_code = status
        self.headers = headers
        self.body = body


class _Refused(Exception):
    """Shaped like websockets' ``InvalidStatus``: the response with a bytes body."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(VENDOR_TEXT)
        self.response = types.SimpleNamespace(status_code=status, headers={}, body=body)


class _ApiError(Exception):
    body: object = None


class _Connection(_ApiError):
    pass


class _Timeout(_Connection):
    pass


class _Event(_ApiError):
    def __init__(self, body: object) -> None:
        super().__init__(VENDOR_TEXT)
        self.body = body


ERRORS = SdkErrors(
    status=(_StatusError, _FernError, _Refused),
    timeouts=(_Timeout,),
    connection=(_Connection, OSError),
    event=(_ApiError,),
)


def raised(exc: Exception, errors: SdkErrors = ERRORS) -> ParleyError:
    """What ``exc`` raised inside ``errors.translated`` becomes (chained to it)."""
    with (
        pytest.raises(ParleyError) as caught,
        errors.translated(ACME, model="m-1", timeout_s=3, waiting_for="a transcript"),
    ):
        raise exc
    assert caught.value.__cause__ is exc
    assert_clean(caught.value)
    return caught.value


def test_sdk_status_errors_are_read_for_status_headers_and_kind() -> None:
    limited = raised(_StatusError(429, {"retry-after": "2"}, {"error": {"type": "x"}}))
    assert isinstance(limited, ProviderRateLimitedError)
    assert limited.retry_after_s == 2
    quota = raised(_FernError(401, None, {"detail": {"status": "quota_exceeded"}}))
    assert quota.code == QUOTA_EXCEEDED
    assert type(raised(_FernError(None, None, None))) is ProviderFailedError
    unknown = raised(_Refused(400, b'{"detail": {"status": "voice_not_found"}}'))
    assert "does not know this voice" in unknown.message
    assert type(raised(_Refused(403, b"<html>no</html>"))) is ProviderAuthError
    assert "model 'm-1'" in raised(_StatusError(404, {}, None)).message


def test_sdk_timeouts_connections_events_and_undecodable_replies() -> None:
    timed_out = raised(_Timeout())
    assert isinstance(timed_out, ParleyTimeoutError)  # not the connection error it subclasses
    assert "did not return a transcript within 3 s" in timed_out.message
    assert "lost the connection" in raised(_Connection()).message
    assert "lost the connection" in raised(ConnectionResetError()).message
    event = raised(_Event({"type": "error", "error": {"type": "overloaded_error"}}))
    assert "is overloaded (error event overloaded_error)" in event.message
    assert "malformed" in raised(ValueError(VENDOR_TEXT)).message


def test_what_is_not_the_librarys_passes_through() -> None:
    with pytest.raises(KeyError), ERRORS.translated(ACME):
        raise KeyError("not a vendor failure")
    own = ACME.malformed()
    with pytest.raises(ProviderFailedError) as caught, ERRORS.translated(ACME):
        raise own
    assert caught.value is own


def _module(name: str, **attributes: object) -> types.ModuleType:
    module = types.ModuleType(name)
    for attribute, value in attributes.items():
        setattr(module, attribute, value)
    return module


def test_stainless_reads_the_sdk_and_http_modules() -> None:
    sdk = _module(
        "fake_sdk",
        APIStatusError=_StatusError,
        APITimeoutError=_Timeout,
        APIConnectionError=_Connection,
        APIError=_ApiError,
    )
    http = _module("fake_http", TimeoutException=TimeoutError, TransportError=OSError)
    errors = SdkErrors.stainless(sdk, http)

    assert errors.timeouts == (_Timeout, TimeoutError)
    assert isinstance(raised(TimeoutError(), errors), ParleyTimeoutError)
    assert isinstance(raised(_StatusError(401, {}, None), errors), ProviderAuthError)
    with pytest.raises(TypeError, match=r"not_an_sdk\.APIStatusError"):
        SdkErrors.stainless(_module("not_an_sdk", APIStatusError="nope"), http)
