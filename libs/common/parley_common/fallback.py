"""Fallback chains: when a stage's provider fails, or is later than its first-result deadline,
the rest of the turn goes to the next provider of the chain (the session's own fallbacks, or
the service's ``<STAGE>_FALLBACK`` default, e.g. ``STT_FALLBACK=deepgram,local``). Each
switch is counted and recorded durably, so operators see how often a provider let users
down. The next turn tries the session's own provider again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from prometheus_client import Counter

from parley_common.bus import MessageMeta
from parley_common.contracts.events import ProviderSwitched
from parley_common.errors import ParleyError, ProviderUnavailableError
from parley_common.reporting import DurableReporter

log = logging.getLogger(__name__)

FALLBACKS = Counter(
    "parley_provider_fallbacks_total",
    "Turns moved to the next provider of a fallback chain",
    ["service", "provider", "fallback"],
)

P = TypeVar("P")


def fallback_env(stage: str) -> tuple[str, ...]:
    """The service's default chain after the session's provider: ``<STAGE>_FALLBACK``, a
    comma-separated list of provider names (empty when unset)."""
    raw = os.environ.get(f"{stage.upper()}_FALLBACK", "")
    return tuple(name.strip() for name in raw.split(",") if name.strip())


def deadline_env(name: str, default: float) -> float:
    """A first-result deadline in seconds from environment variable ``name``."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {raw!r}")
    return value


@dataclass(frozen=True, slots=True)
class Link(Generic[P]):
    """One provider of a chain, with the name sessions know it by."""

    name: str
    provider: P


class FallbackChain(Generic[P]):
    """The providers of one stage of one session, in the order they are tried."""

    def __init__(
        self,
        service: str,
        primary: Link[P],
        fallbacks: Sequence[str],
        get: Callable[[str], P],
        reporter: DurableReporter,
        session_id: str,
        deadline_s: float,
    ) -> None:
        self.service = service
        self.primary = primary
        self._order = list(dict.fromkeys([primary.name, *fallbacks]))
        self._get = get
        self.reporter = reporter
        self.session_id = session_id
        self.deadline_s = deadline_s

    def after(self, current: str) -> Link[P] | None:
        """The next usable provider after ``current`` (unavailable ones are skipped)."""
        start = self._order.index(current) + 1 if current in self._order else len(self._order)
        for name in self._order[start:]:
            try:
                return Link(name, self._get(name))
            except ProviderUnavailableError as exc:
                log.warning(
                    "fallback provider unavailable", extra={"provider": name, "reason": exc.message}
                )
        return None

    def deadline(self, current: str) -> float | None:
        """How long ``current`` may take to its first result: the stage's deadline when a
        provider follows it in the chain, otherwise none (its own timeouts apply)."""
        follows = current in self._order and self._order.index(current) < len(self._order) - 1
        return self.deadline_s if follows else None

    def switched(self, current: str, to: str, exc: BaseException, meta: MessageMeta) -> None:
        """Record that the rest of the turn moved from ``current`` to ``to`` because of
        ``exc`` (a failure, or TimeoutError for a missed deadline)."""
        reason = (
            exc.code
            if isinstance(exc, ParleyError)
            else ("deadline_exceeded" if isinstance(exc, TimeoutError) else "failed")
        )
        FALLBACKS.labels(self.service, current, to).inc()
        log.warning(
            "provider fallback",
            extra={"service": self.service, "provider": current, "fallback": to, "reason": reason},
        )
        event = ProviderSwitched(
            session_id=self.session_id,
            at=datetime.now(UTC),
            service=self.service,
            provider=current,
            fallback=to,
            reason=reason,
        )
        self.reporter.report("provider.switched", event, meta)
