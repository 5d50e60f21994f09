"""Estimated provider prices, to turn usage into ``estimated_cost_usd``.

List prices as S1 documents them (USD); local models cost nothing. Estimates, not invoices.
"""

from __future__ import annotations

# (service, provider, unit) -> USD per unit
PRICES: dict[tuple[str, str, str], float] = {
    ("stt", "whisper", "audio_seconds"): 0.006 / 60,
    ("stt", "openai", "audio_seconds"): 0.006 / 60,
    ("stt", "groq", "audio_seconds"): 0.111 / 3600,
    ("stt", "deepgram", "audio_seconds"): 0.0125 / 60,
    ("stt", "assemblyai", "audio_seconds"): 0.00025,
    ("tts", "openai", "characters"): 15.0 / 1_000_000,
    ("tts", "elevenlabs", "characters"): 0.30 / 1_000,
    ("tts", "deepgram", "characters"): 0.015 / 1_000,
    ("tts", "playht", "characters"): 0.05 / 1_000,
    ("llm", "openai", "input_tokens"): 0.15 / 1_000_000,
    ("llm", "openai", "output_tokens"): 0.60 / 1_000_000,
    ("llm", "groq", "input_tokens"): 0.05 / 1_000_000,
    ("llm", "groq", "output_tokens"): 0.08 / 1_000_000,
    ("llm", "anthropic", "input_tokens"): 3.0 / 1_000_000,
    ("llm", "anthropic", "output_tokens"): 15.0 / 1_000_000,
}


def estimate_cost(service: str, provider: str, unit: str, quantity: float) -> float:
    """USD for ``quantity`` units; 0 for local and unknown providers."""
    return PRICES.get((service, provider, unit), 0.0) * quantity
