"""What every service's provider registry shares: one registry pattern, vendor credentials,
availability with a reason, and the test-double switch."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Generic, TypeVar

from pydantic import SecretStr

from parley_common.bus import Bus, Received
from parley_common.contracts import subjects
from parley_common.contracts.bus import ProvidersReply, ProviderStatus
from parley_common.errors import ProviderUnavailableError

if TYPE_CHECKING:
    from parley_common.runtime import Runtime

log = logging.getLogger(__name__)

TEST_PROVIDERS_ENV = "PARLEY_ENABLE_TEST_PROVIDERS"
SCRIPTED = "scripted"

# The environment variables of each cloud vendor: its key, and where its API is (the SDK's
# own variable where it has one, so a deployment can point any of them at a proxy).
VENDOR_KEY_ENV = {
    "openai": "OPENAI_API_KEY",
    "groq": "GROQ_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "deepgram": "DEEPGRAM_API_KEY",
    "assemblyai": "ASSEMBLYAI_API_KEY",
    "elevenlabs": "ELEVENLABS_API_KEY",
    "playht": "PLAYHT_API_KEY",
}
VENDOR_BASE_URL_ENV = {vendor: f"{vendor.upper()}_BASE_URL" for vendor in VENDOR_KEY_ENV}


def test_providers_enabled() -> bool:
    """Zero-latency scripted doubles are for tests and benchmarks only: selectable solely when
    ``PARLEY_ENABLE_TEST_PROVIDERS=1``."""
    return os.environ.get(TEST_PROVIDERS_ENV) == "1"


def require_test_providers(what: str) -> None:
    """Refuse ``what`` (a scripted double) unless test providers are enabled."""
    if not test_providers_enabled():
        raise ProviderUnavailableError(f"the scripted {what} test double is disabled")


def api_key(vendor: str) -> SecretStr:
    """The API key of ``vendor`` from ``<VENDOR>_API_KEY``; a provider without it is
    unavailable, and the reason names the variable to set."""
    variable = VENDOR_KEY_ENV[vendor]
    value = os.environ.get(variable, "").strip()
    if not value:
        raise ProviderUnavailableError(f"no API key: set {variable}", provider=vendor)
    return SecretStr(value)


def base_url(vendor: str, default: str | None = None) -> str | None:
    """``<VENDOR>_BASE_URL`` when set (a proxy, a compatible server, a test emulator)."""
    value = os.environ.get(VENDOR_BASE_URL_ENV[vendor], "").strip()
    return value or default


P = TypeVar("P")


class ProviderRegistry(Generic[P]):
    """The adapters of one capability (``STT``, ``LLM``, ``TTS``) by name.

    A builder makes the adapter and raises ``ProviderUnavailableError`` saying why it cannot
    (no key, extra not installed). Built adapters are kept, one per process and name, so a
    model loads once; failures are not kept, so a provider that becomes available later (a
    key set, an extra installed) is picked up.
    """

    def __init__(self, capability: str, names: type[StrEnum]) -> None:
        self.capability = capability
        self.names = names
        self._builders: dict[str, Callable[[], P]] = {}
        self._built: dict[str, P] = {}

    def register(self, name: str) -> Callable[[Callable[[], P]], Callable[[], P]]:
        """Decorator registering the builder of adapter ``name``."""

        def add(builder: Callable[[], P]) -> Callable[[], P]:
            self._builders[name] = builder
            return builder

        return add

    def get(self, name: str) -> P:
        """The adapter ``name``; raises ProviderUnavailableError with the reason."""
        key = str(name)
        if key in self._built:
            return self._built[key]
        if key == SCRIPTED:
            require_test_providers(self.capability)
        builder = self._builders.get(key)
        if builder is None:
            raise ProviderUnavailableError(
                f"{self.capability} provider '{key}' is not available in this version",
                provider=key,
            )
        provider = builder()
        self._built[key] = provider
        return provider

    async def prepare(self) -> tuple[ProviderStatus, ...]:
        """Import and build every adapter this deployment can serve, in a thread: SDK
        imports take seconds, and must not stall the event loop of a worker holding
        sessions (nor make the first session's assignment miss its deadline)."""
        return await asyncio.to_thread(self.statuses)

    async def aclose(self) -> None:
        """Close the adapters built so far that hold connections (worker shutdown)."""
        built, self._built = list(self._built.values()), {}
        for provider in built:
            close = getattr(provider, "aclose", None)
            if close is not None:
                try:
                    await close()
                except Exception:
                    log.exception("provider did not close cleanly")

    def status(self, name: str) -> ProviderStatus:
        """Whether a session may choose ``name`` here, and if not, why."""
        try:
            self.get(name)
        except ProviderUnavailableError as exc:
            return ProviderStatus(name=str(name), available=False, reason=exc.message)
        except Exception:
            log.exception("provider failed to initialise", extra={"provider": str(name)})
            return ProviderStatus(name=str(name), available=False, reason="failed to initialise")
        return ProviderStatus(name=str(name), available=True)

    def statuses(self) -> tuple[ProviderStatus, ...]:
        """Every provider of the capability; test doubles only while they are enabled."""
        return tuple(
            self.status(n.value)
            for n in self.names
            if n.value != SCRIPTED or test_providers_enabled()
        )


async def serve_provider_statuses(bus: Bus, service: str, registry: ProviderRegistry[P]) -> None:
    """Answer "which providers can sessions use?" in ``service``'s queue group, so the gateway
    lists what the deployed workers can really serve."""

    async def answer(msg: Received) -> None:
        reply = ProvidersReply(service=service, providers=registry.statuses())
        await bus.respond(msg, reply, msg.meta)

    await bus.subscribe(subjects.query(service, "providers"), answer, queue=service)


async def prepare_providers(runtime: Runtime, registry: ProviderRegistry[P]) -> None:
    """At a worker's start-up: build its adapters off the loop, then answer provider
    queries. ``/health`` says ``providers: fail`` until then, so whoever waits for the
    worker to be ready (``parley up``, a readiness probe) does not send it sessions while it
    is still importing SDKs."""
    prepared = asyncio.Event()

    async def check() -> bool:
        return prepared.is_set()

    runtime.checks["providers"] = check
    await registry.prepare()
    await serve_provider_statuses(runtime.bus, runtime.name, registry)
    prepared.set()
