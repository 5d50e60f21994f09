"""What every service's provider registry shares: the errors and the test-double switch."""

from __future__ import annotations

import os

TEST_PROVIDERS_ENV = "PARLEY_ENABLE_TEST_PROVIDERS"


class ProviderUnavailableError(RuntimeError):
    """A session asked for a provider this worker cannot serve (unknown, no API key, extra
    not installed, or a test double while they are disabled). The message says which."""


def test_providers_enabled() -> bool:
    """Zero-latency scripted doubles are for tests and benchmarks only: selectable solely when
    ``PARLEY_ENABLE_TEST_PROVIDERS=1``."""
    return os.environ.get(TEST_PROVIDERS_ENV) == "1"


def require_test_providers(what: str) -> None:
    """Refuse ``what`` (a scripted double) unless test providers are enabled."""
    if not test_providers_enabled():
        raise ProviderUnavailableError(f"the scripted {what} test double is disabled")
