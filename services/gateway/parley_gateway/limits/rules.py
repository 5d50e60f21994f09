"""What is limited and how much: the kinds of request, their rates, and the parser of the
``GATEWAY_RATE_LIMITS_USER`` / ``GATEWAY_RATE_LIMITS_IP`` variables.

A variable is a comma-separated list of ``kind=N/window`` items, e.g.
``session_start=30/60s,chat=20/1m``: at most N requests of that kind per window (``s``,
``m`` or ``h``; a bare number is seconds). ``kind=off`` lifts the limit of one kind; kinds
left out keep their default, so one item changes one limit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

from pydantic import BeforeValidator, Field
from pydantic_settings import NoDecode

LimitKind = Literal["session_start", "chat", "stt", "tts", "clone"]
KINDS: tuple[LimitKind, ...] = get_args(LimitKind)
_BY_NAME: dict[str, LimitKind] = {kind: kind for kind in KINDS}

# One day: a longer window would keep counters in the bucket for longer than any abuse
# pattern needs, and says more about a quota than a rate.
MAX_WINDOW_S = 24 * 3600

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}
_ITEM = re.compile(r"^(?P<count>\d+)\s*/\s*(?P<window>\d+)\s*(?P<unit>[smh]?)$")


@dataclass(frozen=True, slots=True)
class Rate:
    """At most ``count`` requests per fixed window of ``window_s`` seconds."""

    count: int
    window_s: int

    def __str__(self) -> str:
        return f"{self.count}/{self.window_s}s"

    def window_at(self, now: float) -> tuple[int, float]:
        """The index of the window holding ``now`` (epoch seconds; windows are aligned on
        the epoch, so every replica agrees on them) and the seconds until it ends."""
        index = int(now // self.window_s)
        return index, (index + 1) * self.window_s - now


RateRules = Mapping[LimitKind, Rate]

# Generous: a person never meets them; a script hammering one route does. Per IP they are
# ten times the per-user ones, since one address can be a whole office behind a NAT.
# (Typed read-only; pydantic copies a default into each settings object.)
DEFAULT_USER_RULES: RateRules = {
    "session_start": Rate(120, 60),
    "chat": Rate(120, 60),
    "stt": Rate(120, 60),
    "tts": Rate(120, 60),
    "clone": Rate(10, 60),
}
DEFAULT_IP_RULES: RateRules = {
    kind: Rate(rate.count * 10, rate.window_s) for kind, rate in DEFAULT_USER_RULES.items()
}


def parse_rate(text: str) -> Rate:
    """``"30/60s"`` -> ``Rate(30, 60)``; raises ValueError saying what is wrong."""
    match = _ITEM.match(text.strip().lower())
    if match is None:
        raise ValueError(f"{text!r} is not N/window (e.g. 30/60s, 20/1m, 100/1h)")
    count = int(match["count"])
    window_s = int(match["window"]) * _UNITS[match["unit"]]
    if count < 1:
        raise ValueError(f"{text!r}: the count must be at least 1 (use off to lift a limit)")
    if not 1 <= window_s <= MAX_WINDOW_S:
        raise ValueError(f"{text!r}: the window must be between 1 s and {MAX_WINDOW_S} s")
    return Rate(count, window_s)


def parse_rules(text: str, defaults: RateRules) -> dict[LimitKind, Rate]:
    """The rules of a ``kind=N/window,...`` list over ``defaults``; raises ValueError."""
    rules = dict(defaults)
    seen: set[LimitKind] = set()
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"{item!r} is not kind=N/window")
        kind = _BY_NAME.get(name.strip().lower())
        if kind is None:
            raise ValueError(f"unknown kind {name.strip()!r}; kinds are {', '.join(KINDS)}")
        if kind in seen:
            raise ValueError(f"{kind} is given twice")
        seen.add(kind)
        if value.strip().lower() == "off":
            rules.pop(kind, None)
        else:
            try:
                rules[kind] = parse_rate(value)
            except ValueError as exc:
                raise ValueError(f"{kind}: {exc}") from None
    return rules


def rules_validator(variable: str, defaults: RateRules) -> Callable[[Any], Any]:
    """A pydantic before-validator that reads a rules string (a mapping passes through), with
    errors that name ``variable``."""

    def _validate(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return parse_rules(value, defaults)
        except ValueError as exc:
            raise ValueError(f"{variable}: {exc}") from None

    return _validate


# The settings' types (``GatewaySettings.rate_limits_*``): read from a rules string, not JSON.
UserRateRules = Annotated[
    RateRules,
    NoDecode,
    BeforeValidator(rules_validator("GATEWAY_RATE_LIMITS_USER", DEFAULT_USER_RULES)),
]
IpRateRules = Annotated[
    RateRules,
    NoDecode,
    BeforeValidator(rules_validator("GATEWAY_RATE_LIMITS_IP", DEFAULT_IP_RULES)),
]
# How long one check may wait for the bucket.
CheckTimeout = Annotated[float, Field(gt=0, le=10)]
