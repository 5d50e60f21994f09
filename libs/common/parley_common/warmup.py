"""Loading a service's default model at start-up, so that the first conversation does not
wait for it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from parley_common.errors import ProviderUnavailableError

log = logging.getLogger(__name__)


@runtime_checkable
class WarmsUp(Protocol):
    """A provider that can load its model ahead of use."""

    async def warm_up(self) -> None:
        """Load the model now."""


async def warm_up(name: str, get_provider: Callable[[], object]) -> None:
    """Load provider ``name`` in the background of start-up; a provider that is not available
    here (no extra installed) is logged and skipped, since sessions may use another one."""
    started = time.perf_counter()
    try:
        provider = get_provider()
        if isinstance(provider, WarmsUp):
            await provider.warm_up()
    except ProviderUnavailableError as exc:
        log.info("default provider not available", extra={"provider": name, "reason": str(exc)})
        return
    except Exception as exc:
        # A broken model must not take the worker down: sessions may use other providers,
        # and those that ask for this one get the error when they do.
        log.error("default provider failed to load", extra={"provider": name, "error": repr(exc)})
        return
    log.info(
        "provider ready",
        extra={"provider": name, "seconds": round(time.perf_counter() - started, 2)},
    )
