"""The rate limiter: per user and per client IP, one count for every gateway replica.

Each request of a kind takes one unit of its user's window and of its IP's window (fixed
windows aligned on the epoch: at most N per window, so a burst can straddle two windows).
A request refused by one limit gives back what it took from the other, so that a user is
not charged for requests their busy NAT address was refused. A counter so contended that
compare-and-set keeps losing (one caller's burst of simultaneous requests) refuses too, with
a retry after one second.

When the bucket does not answer within ``timeout_s`` (NATS down, reconnecting, overloaded)
the request is let through: an outage of the limiter must not become an outage of the
gateway. Such requests are counted in ``parley_rate_limit_unchecked_total`` and a warning is
logged at most once a minute. Windows follow the wall clock, so replicas must agree on the
time (NTP); a skew of a second moves a window's edges by a second, nothing more.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import nats.errors
from prometheus_client import Counter

from parley_common.errors import RateLimitedError
from parley_gateway.limits.counter import ContentionError, WindowCounters, counter_key, open_bucket
from parley_gateway.limits.rules import LimitKind, Rate

if TYPE_CHECKING:
    from parley_common.bus import Bus
    from parley_gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

UNCHECKED = Counter(
    "parley_rate_limit_unchecked_total",
    "Requests let through unchecked because the rate-limit bucket did not answer in time",
    ["kind"],
)
REFUSED = Counter(
    "parley_rate_limited_total",
    "Requests refused by one of Parley's rate limits",
    ["kind", "scope"],
)

WARN_EVERY_S = 60.0
# A caller whose counter stays contended (a burst of simultaneous requests) may simply try
# again: the contention, not the window, is what refused it.
CONTENDED_RETRY_S = 1.0

Scope = Literal["user", "ip"]
_WORDS: dict[Scope, str] = {"user": "user", "ip": "address"}


@dataclass(frozen=True, slots=True)
class _Limit:
    scope: Scope
    identity: str
    rate: Rate


class RateLimiter:
    """Checks requests against per-user and per-IP rates kept in a shared KV bucket."""

    def __init__(
        self,
        counters: WindowCounters | None,
        user_rules: Mapping[LimitKind, Rate],
        ip_rules: Mapping[LimitKind, Rate],
        *,
        timeout_s: float = 0.5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._counters = counters
        self._rules: dict[Scope, Mapping[LimitKind, Rate]] = {"user": user_rules, "ip": ip_rules}
        self._timeout_s = timeout_s
        self._clock = clock
        self._warned_at = -math.inf
        self._unwarned = 0

    @classmethod
    def unlimited(cls) -> RateLimiter:
        """A limiter that lets everything through (rate limits disabled)."""
        return cls(None, {}, {})

    def _limits(self, kind: LimitKind, user_id: str | None, ip: str | None) -> list[_Limit]:
        identities: dict[Scope, str | None] = {"user": user_id, "ip": ip}
        return [
            _Limit(scope, identity, rate)
            for scope, identity in identities.items()
            if identity is not None and (rate := self._rules[scope].get(kind)) is not None
        ]

    async def check(self, kind: LimitKind, *, user_id: str | None, ip: str | None) -> None:
        """Count one request of ``kind`` by ``user_id`` (None when authentication is off:
        only the IP is limited) from ``ip``; raises RateLimitedError, with the seconds until
        the refusing window reopens, when either limit is reached. Returns within about
        ``timeout_s`` whatever the state of NATS. A WebSocket calls it as
        ``await gateway.limiter.check("session_start", user_id=principal.user_id,
        ip=client_ip(websocket))`` and closes with CLOSE_RATE_LIMITED on the error."""
        limits = self._limits(kind, user_id, ip)
        counters = self._counters
        if counters is None or not limits:
            return
        now = self._clock()
        taken: list[str] = []
        refusal: tuple[_Limit, float] | None = None
        try:
            async with asyncio.timeout(self._timeout_s):
                for limit in limits:
                    window, left_s = limit.rate.window_at(now)
                    key = counter_key(
                        kind, limit.scope, limit.identity, limit.rate.window_s, window
                    )
                    try:
                        admitted = await counters.take(key, limit.rate.count)
                    except ContentionError:
                        refusal = (limit, CONTENDED_RETRY_S)
                        break
                    if not admitted:
                        refusal = (limit, left_s)
                        break
                    taken.append(key)
        except (TimeoutError, nats.errors.Error) as exc:
            self._let_through(kind, exc)
            return
        if refusal is None:
            return
        await self._give_back(counters, taken)
        limit, retry_after_s = refusal
        REFUSED.labels(kind, limit.scope).inc()
        raise RateLimitedError(
            f"too many {kind} requests from this {_WORDS[limit.scope]}:"
            f" at most {limit.rate.count} per {limit.rate.window_s} s",
            retry_after_s=retry_after_s,
            details=[
                {
                    "kind": kind,
                    "scope": limit.scope,
                    "limit": limit.rate.count,
                    "window_s": limit.rate.window_s,
                    "retry_after_s": round(retry_after_s, 3),
                }
            ],
        )

    async def _give_back(self, counters: WindowCounters, keys: list[str]) -> None:
        # Best effort: a unit not given back only makes the limit a little stricter until
        # the window ends.
        try:
            async with asyncio.timeout(self._timeout_s):
                for key in keys:
                    await counters.give_back(key)
        except (TimeoutError, ContentionError, nats.errors.Error) as exc:
            log.debug("rate-limit unit not given back", extra={"error": type(exc).__name__})

    def _let_through(self, kind: LimitKind, exc: BaseException) -> None:
        UNCHECKED.labels(kind).inc()
        self._unwarned += 1
        now = time.monotonic()
        if now - self._warned_at < WARN_EVERY_S:
            return
        log.warning(
            "rate limits not enforced: the rate-limit bucket did not answer; requests are let"
            " through",
            extra={"kind": kind, "error": type(exc).__name__, "requests": self._unwarned},
        )
        self._warned_at = now
        self._unwarned = 0


async def open_rate_limiter(bus: Bus, settings: GatewaySettings) -> RateLimiter:
    """The gateway's limiter from its settings: its bucket is created (or its TTL
    extended) here; disabled or empty rules give a limiter that checks nothing."""
    user, ip = settings.rate_limits_user, settings.rate_limits_ip
    if not settings.rate_limits_enabled or not (user or ip):
        return RateLimiter.unlimited()
    ttl_s = max(rate.window_s for rate in (*user.values(), *ip.values()))
    kv = await open_bucket(bus.js, ttl_s)
    return RateLimiter(WindowCounters(kv), user, ip, timeout_s=settings.rate_limits_timeout_s)
