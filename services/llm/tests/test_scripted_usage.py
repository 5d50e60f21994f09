"""The scripted double reports usage like a real adapter: the model asked for, words as
tokens, and whether max_tokens cut the reply."""

from __future__ import annotations

from parley_llm.providers.base import ChatMessage, LlmUsage
from parley_llm.providers.scripted import ScriptedLlmProvider

ASK = [ChatMessage("system", "Be brief."), ChatMessage("user", "hello there")]


async def test_usage_counts_words_and_names_the_model() -> None:
    provider = ScriptedLlmProvider("one two three")
    usage = LlmUsage()

    deltas = [d async for d in provider.stream(ASK, 10, model="chosen", usage=usage)]

    assert deltas == ["one", " two", " three"]
    assert (usage.model, usage.input_tokens, usage.output_tokens) == ("chosen", 4, 3)
    assert usage.finish_reason == "stop"
    assert provider.runs[-1].model == "chosen"


async def test_usage_says_length_when_max_tokens_cut_the_reply() -> None:
    usage = LlmUsage()

    deltas = [d async for d in ScriptedLlmProvider("one two three").stream(ASK, 2, usage=usage)]

    assert len(deltas) == 2
    assert (usage.model, usage.output_tokens, usage.finish_reason) == ("scripted", 2, "length")
