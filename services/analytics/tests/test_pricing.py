"""The price table: S1's figures by default, a JSON or TOML file in their place, and a file
that cannot be used refused with the reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from parley_analytics.pricing import (
    DEFAULT_PRICES,
    DEFAULT_VERSION,
    PriceTable,
    PriceTableError,
    load_prices,
)


def _cost(
    table: PriceTable,
    service: str,
    provider: str,
    unit: str,
    quantity: float,
    model: str | None = None,
) -> Decimal:
    return table.cost(table.price(service, provider, model, unit), quantity)


@pytest.mark.parametrize(
    ("service", "provider", "unit", "quantity", "usd"),
    [
        ("stt", "whisper", "audio_seconds", 60, "0.006"),  # $0.006/min
        ("stt", "openai", "audio_seconds", 30 * 60, "0.18"),  # S1's 30-minute example
        ("stt", "deepgram", "audio_seconds", 30 * 60, "0.375"),  # $0.0125/min
        ("stt", "assemblyai", "audio_seconds", 10, "0.0025"),  # $0.00025/s
        ("tts", "openai", "characters", 5000, "0.075"),  # $15/1M
        ("tts", "elevenlabs", "characters", 5000, "1.5"),  # $0.30/1K
        ("stt", "local", "audio_seconds", 3600, "0"),
        ("llm", "local", "output_tokens", 10_000, "0"),
        ("tts", "scripted", "characters", 10_000, "0"),
    ],
)
def test_the_defaults_are_s1s_figures(
    service: str, provider: str, unit: str, quantity: float, usd: str
) -> None:
    assert DEFAULT_PRICES.version == DEFAULT_VERSION
    assert _cost(DEFAULT_PRICES, service, provider, unit, quantity) == Decimal(usd)


def test_llm_tokens_are_priced_per_model_and_dated_names_take_their_models_price() -> None:
    million = 1_000_000
    assert _cost(DEFAULT_PRICES, "llm", "openai", "input_tokens", million, "gpt-4.1-mini") == (
        Decimal("0.40")
    )
    # A dated snapshot is its model, not the shorter gpt-4.1 it also starts with.
    dated = "gpt-4.1-mini-2025-04-14"
    assert _cost(DEFAULT_PRICES, "llm", "openai", "output_tokens", million, dated) == (
        Decimal("1.60")
    )
    assert _cost(DEFAULT_PRICES, "llm", "openai", "output_tokens", million, "gpt-4.1") == 8
    llama = "llama-3.3-70b-versatile"
    assert _cost(DEFAULT_PRICES, "llm", "groq", "input_tokens", 2 * million, llama) == (
        Decimal("1.18")
    )
    # Parley's default Anthropic model is priced at its tier's price.
    haiku = DEFAULT_PRICES.price("llm", "anthropic", "claude-haiku-5-5", "output_tokens")
    assert haiku is not None
    assert haiku.usd_per_unit == Decimal(5) / million
    # A few tokens of a cheap model are still a cost, to 10 decimal places.
    assert _cost(DEFAULT_PRICES, "llm", "groq", "input_tokens", 7, "llama-3.1-8b-instant") == (
        Decimal("0.00000035")
    )


def test_what_the_table_does_not_know_has_no_price() -> None:
    assert DEFAULT_PRICES.price("llm", "openai", "gpt-99", "input_tokens") is None
    assert DEFAULT_PRICES.price("llm", "openai", None, "input_tokens") is None
    assert DEFAULT_PRICES.price("tts", "nobody", None, "characters") is None
    assert DEFAULT_PRICES.cost(None, 1000) == 0


def test_a_json_file_replaces_the_whole_table(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    table = {
        "version": "acme-2026-03",
        "prices": [
            {"service": "stt", "provider": "deepgram", "unit": "audio_seconds", "usd": 0.02,
             "per": 60},
            {"service": "llm", "provider": "openai", "model": "gpt-4.1-mini",
             "unit": "output_tokens", "usd": 2, "per": 1000000, "note": "negotiated"},
        ],
    }  # fmt: skip
    path.write_text(json.dumps(table))
    prices = load_prices(path)
    assert prices.version == "acme-2026-03"
    assert _cost(prices, "stt", "deepgram", "audio_seconds", 90) == Decimal("0.03")
    assert _cost(prices, "llm", "openai", "output_tokens", 500_000, "gpt-4.1-mini") == 1
    # Replaced, not merged: what the file leaves out has no price.
    assert prices.price("tts", "openai", None, "characters") is None


def test_a_toml_file_has_the_same_shape(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(
        'version = "toml-1"\n'
        "[[prices]]\n"
        'service = "tts"\nprovider = "elevenlabs"\nunit = "characters"\nusd = 0.25\nper = 1000\n'
    )
    prices = load_prices(path)
    assert prices.version == "toml-1"
    assert _cost(prices, "tts", "elevenlabs", "characters", 2000) == Decimal("0.5")


def test_no_file_means_the_defaults() -> None:
    assert load_prices(None) is DEFAULT_PRICES


def test_the_printed_defaults_load_back_as_the_same_table(tmp_path: Path) -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "parley_analytics.pricing"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = tmp_path / "defaults.json"
    path.write_text(printed)
    assert load_prices(path) == DEFAULT_PRICES


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("prices.yaml", "version: x", "must end in .json or .toml"),
        ("prices.json", "{not json", "not valid JSON"),
        ("prices.toml", "version = ", "not valid TOML"),
        ("prices.json", '{"prices": []}', "version: Field required"),
        (
            "prices.json",
            '{"version": "v", "prices": [{"service": "stt", "provider": "deepgram",'
            ' "unit": "audio_seconds", "usd": -1}]}',
            "prices.0.usd: Input should be greater than or equal to 0",
        ),
        (
            "prices.json",
            '{"version": "v", "prices": [{"service": "stt", "provider": "deepgram",'
            ' "unit": "minutes", "usd": 1}]}',
            "prices.0.unit: Input should be",
        ),
        (
            "prices.json",
            '{"version": "v", "prices": [{"service": "tts", "provider": "openai",'
            ' "unit": "characters", "usd": 1, "per": 0}]}',
            "prices.0.per: Input should be greater than 0",
        ),
        (
            "prices.json",
            '{"version": "v", "prices": ['
            '{"service": "tts", "provider": "openai", "unit": "characters", "usd": 1},'
            '{"service": "tts", "provider": "openai", "unit": "characters", "usd": 2}]}',
            "prices.1 prices tts/openai/*/characters a second time",
        ),
        (
            "prices.json",
            '{"version": "v", "prices": [], "currency": "EUR"}',
            "currency: Extra inputs are not permitted",
        ),
    ],
)
def test_a_bad_file_is_refused_with_where_and_why(
    tmp_path: Path, name: str, content: str, says: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(PriceTableError) as caught:
        load_prices(path)
    assert str(path) in str(caught.value)
    assert says in str(caught.value)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(PriceTableError, match="cannot read it"):
        load_prices(path)


def test_the_service_does_not_start_with_a_bad_price_table(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text('{"version": "v", "prices": [{"service": "stt"}]}')
    env = {**os.environ, "PARLEY_PRICES_FILE": str(path), "NATS_URL": "nats://127.0.0.1:9"}
    done = subprocess.run(
        [sys.executable, "-m", "parley_analytics"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode != 0
    assert "PARLEY_PRICES_FILE" in done.stderr
    assert "prices.0.provider: Field required" in done.stderr
