"""The price table: what one unit of each provider's work costs, under a version name.

Every stored cost carries the version of the table that priced it, so a price change shows
in the records instead of silently rewriting what earlier calls cost. The defaults are S1's
figures for speech (Whisper $0.006/min, Deepgram $0.0125/min, AssemblyAI $0.00025/s, OpenAI
TTS $15 per million characters, ElevenLabs $0.30 per thousand) and the vendors' published
per-token list prices of the LLMs Parley supports as of ``DEFAULT_VERSION``'s date; local
models and the scripted test doubles cost nothing. Estimates, not invoices.

``PARLEY_PRICES_FILE`` replaces the whole table with a JSON or TOML file of the same shape
(``python -m parley_analytics.pricing`` prints the defaults in it):

    version = "acme-2026-03"
    [[prices]]
    service = "stt"
    provider = "deepgram"
    unit = "audio_seconds"
    usd = 0.0125
    per = 60          # USD for this many units (default 1)
    model = "nova-3"  # optional: "*" (the default) prices every model of the provider
"""

from __future__ import annotations

import json
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

__all__ = [
    "ANY_MODEL",
    "DEFAULT_PRICES",
    "DEFAULT_VERSION",
    "Price",
    "PriceTable",
    "PriceTableError",
    "Service",
    "Unit",
    "load_prices",
]

Service = Literal["stt", "llm", "tts", "clone"]
Unit = Literal["audio_seconds", "characters", "input_tokens", "output_tokens"]

ANY_MODEL = "*"
# Costs are stored as numeric(20, 10): a few tokens of a cheap model are still visible.
COST_QUANTUM = Decimal("1e-10")


class PriceTableError(ValueError):
    """The configured price table cannot be used; the message says where and why."""


class Price(BaseModel):
    """``usd`` for ``per`` units of ``unit`` done by ``provider`` (and ``model``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service: Service
    provider: str = Field(min_length=1)
    model: str = Field(default=ANY_MODEL, min_length=1)
    unit: Unit
    usd: Decimal = Field(ge=0, allow_inf_nan=False)
    per: Decimal = Field(default=Decimal(1), gt=0, allow_inf_nan=False)
    note: str | None = None

    @property
    def usd_per_unit(self) -> Decimal:
        """The price of one unit."""
        return self.usd / self.per


_Key = tuple[str, str, str, str]  # service, provider, model, unit


class PriceTable(BaseModel):
    """A named set of prices. A model is priced by its exact entry, else by the longest entry
    it extends with a dash (``gpt-4.1-mini`` prices ``gpt-4.1-mini-2025-04-14``), else by
    the provider's ``*`` entry; anything else has no price."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00]*$")
    prices: tuple[Price, ...]
    _index: dict[_Key, Price] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _one_price_each(self) -> Self:
        for position, price in enumerate(self.prices):
            key = (price.service, price.provider, price.model, price.unit)
            if key in self._index:
                raise ValueError(
                    f"prices.{position} prices {'/'.join(key)} a second time"
                    " (each service, provider, model and unit once)"
                )
            self._index[key] = price
        return self

    def price(self, service: str, provider: str, model: str | None, unit: str) -> Price | None:
        """The entry that prices this work, or None when the table has none."""
        if model:
            exact = self._index.get((service, provider, model, unit))
            if exact is not None:
                return exact
            extended = [
                p
                for (s, pr, m, u), p in self._index.items()
                if (s, pr, u) == (service, provider, unit)
                and m != ANY_MODEL
                and model.startswith(m + "-")
            ]
            if extended:
                return max(extended, key=lambda p: len(p.model))
        return self._index.get((service, provider, ANY_MODEL, unit))

    def cost(self, price: Price | None, quantity: float) -> Decimal:
        """USD for ``quantity`` units at ``price`` (0 without one), to 10 decimal places."""
        if price is None:
            return Decimal(0)
        return (Decimal(str(quantity)) * price.usd_per_unit).quantize(COST_QUANTUM)


def load_prices(path: Path | None) -> PriceTable:
    """The table in ``path`` (JSON or TOML), or the defaults when ``path`` is None.
    Raises PriceTableError naming the file and the first problems found."""
    if path is None:
        return DEFAULT_PRICES
    where = f"price table {path}"
    if path.suffix not in (".json", ".toml"):
        raise PriceTableError(f"{where}: the file must end in .json or .toml")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise PriceTableError(f"{where}: cannot read it ({reason})") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PriceTableError(f"{where}: not valid {path.suffix[1:].upper()} ({exc})") from None
    try:
        return PriceTable.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'the table'}: {e['msg']}"
            for e in exc.errors()[:5]
        )
        raise PriceTableError(f"{where}: {problems}") from None


# Speech: service, provider, model, unit, USD, for this many units.
_SPEECH: tuple[tuple[str, str, str, str, str, int], ...] = (
    ("stt", "whisper", ANY_MODEL, "audio_seconds", "0.006", 60),  # S1: $0.006/min
    ("stt", "openai", ANY_MODEL, "audio_seconds", "0.006", 60),  # whisper-1, gpt-4o-transcribe
    ("stt", "openai", "gpt-4o-mini-transcribe", "audio_seconds", "0.003", 60),
    ("stt", "groq", ANY_MODEL, "audio_seconds", "0.111", 3600),  # whisper-large-v3, per hour
    ("stt", "groq", "whisper-large-v3-turbo", "audio_seconds", "0.04", 3600),
    ("stt", "deepgram", ANY_MODEL, "audio_seconds", "0.0125", 60),  # S1: $0.0125/min
    ("stt", "assemblyai", ANY_MODEL, "audio_seconds", "0.00025", 1),  # S1: $0.00025/s
    ("tts", "openai", ANY_MODEL, "characters", "15", 1_000_000),  # S1: $15/1M (tts-1)
    ("tts", "openai", "tts-1-hd", "characters", "30", 1_000_000),
    ("tts", "elevenlabs", ANY_MODEL, "characters", "0.30", 1000),  # S1: $0.30/1K
    ("tts", "deepgram", ANY_MODEL, "characters", "0.015", 1000),  # Aura
    ("tts", "playht", ANY_MODEL, "characters", "0.05", 1000),  # legacy API, historical
)

# LLMs: provider, model, USD per million input tokens, per million output tokens; the
# vendors' list prices of 2025-10. A tier's bare name ("claude-haiku") prices its later
# models (Parley's default claude-haiku-5-5) at the tier's price.
_LLM: tuple[tuple[str, str, str, str], ...] = (
    ("openai", "gpt-4.1", "2.00", "8.00"),
    ("openai", "gpt-4.1-mini", "0.40", "1.60"),
    ("openai", "gpt-4.1-nano", "0.10", "0.40"),
    ("openai", "gpt-4o", "2.50", "10.00"),
    ("openai", "gpt-4o-mini", "0.15", "0.60"),
    ("groq", "llama-3.3-70b-versatile", "0.59", "0.79"),
    ("groq", "llama-3.1-8b-instant", "0.05", "0.08"),
    ("anthropic", "claude-haiku-4-5", "1.00", "5.00"),
    ("anthropic", "claude-sonnet-4-5", "3.00", "15.00"),
    ("anthropic", "claude-opus-4-1", "15.00", "75.00"),
    ("anthropic", "claude-3-5-haiku", "0.80", "4.00"),
    ("anthropic", "claude-haiku", "1.00", "5.00"),
    ("anthropic", "claude-sonnet", "3.00", "15.00"),
    ("anthropic", "claude-opus", "15.00", "75.00"),
)

# Work done on this machine, by the operator's own server, or by a test double.
_FREE = ("local", "scripted", "openai_compatible")
_UNITS: tuple[tuple[str, str], ...] = (
    ("stt", "audio_seconds"),
    ("llm", "input_tokens"),
    ("llm", "output_tokens"),
    ("tts", "characters"),
)


def _defaults() -> PriceTable:
    rows = [
        {"service": s, "provider": p, "model": m, "unit": u, "usd": usd, "per": per}
        for s, p, m, u, usd, per in _SPEECH
    ]
    for provider, model, input_usd, output_usd in _LLM:
        for unit, usd in (("input_tokens", input_usd), ("output_tokens", output_usd)):
            row = {"service": "llm", "provider": provider, "model": model, "unit": unit}
            rows.append({**row, "usd": usd, "per": 1_000_000})
    rows += [{"service": s, "provider": p, "unit": u, "usd": 0} for p in _FREE for s, u in _UNITS]
    return PriceTable.model_validate({"version": DEFAULT_VERSION, "prices": rows})


DEFAULT_VERSION = "parley-default-2025-10"
DEFAULT_PRICES = _defaults()


if __name__ == "__main__":
    # The defaults in the shape PARLEY_PRICES_FILE takes, to start an override from.
    print(DEFAULT_PRICES.model_dump_json(indent=2, exclude_defaults=True))
