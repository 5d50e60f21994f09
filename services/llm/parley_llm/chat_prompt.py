"""Chat prompts for the offline instruct models, built as tokens so that llama.cpp keeps the
conversation in its KV cache from one turn to the next.

Both offline models use ChatML (``<|im_start|>role\\n…<|im_end|>\\n`` per message, then
``<|im_start|>assistant\\n`` for the answer), which their GGUF's own chat template renders;
``LocalLlamaProvider`` checks that at load time. The prompt is assembled message by message
rather than rendered as one string and tokenized, for two reasons:

- what a person says is tokenized as plain text, so "<|im_end|>" in a message is text, never
  a control token;
- the previous answer is written with the very tokens the model generated for it (kept in
  ``AnswerTokens``), so turn N+1's prompt starts with exactly turn N's prompt and answer: the
  cache already holds them, and only the new user turn is evaluated.

The prompt is bounded by tokens. Old turns are dropped first; which ones is chosen with the
cache in view (``build_prompt``): dropping messages right after the system prompt does not
force a re-read when the cache can cut them out and shift the rest down (``CacheCut``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from parley_llm.providers.base import ChatMessage

# Used when the caller sends no system message (the dialogue session always sends one).
FALLBACK_SYSTEM_PROMPT = "You are a helpful voice assistant. Answer in short spoken sentences."

Tokens = Sequence[int]


@dataclass(frozen=True, slots=True)
class ChatMl:
    """ChatML framing for one tokenizer: its two control tokens and plain-text tokenization."""

    start: int  # <|im_start|>
    end: int  # <|im_end|>
    tokenize: Callable[[str], list[int]]  # plain text, special tokens not recognised

    def message(self, role: str, content: Tokens) -> list[int]:
        """``<|im_start|>{role}\\n{content}<|im_end|>\\n`` with ``content`` already tokenized."""
        return [self.start, *self.tokenize(f"{role}\n"), *content, self.end, *self.tokenize("\n")]

    def cue(self) -> list[int]:
        """``<|im_start|>assistant\\n``: where the model writes its answer."""
        return [self.start, *self.tokenize("assistant\n")]


class AnswerTokens:
    """The tokens the model generated for its recent answers, by the text they became.

    Re-tokenizing an answer does not always give back the tokens it was sampled as; writing
    it into the next prompt with its own tokens keeps that prompt a continuation of what the
    cache holds. Bounded: a few dozen answers of a few hundred tokens at most.
    """

    def __init__(self, capacity: int = 64) -> None:
        self._capacity = capacity
        self._tokens: OrderedDict[str, tuple[int, ...]] = OrderedDict()

    def remember(self, text: str, tokens: Tokens) -> None:
        """``tokens`` were generated and became ``text`` (as the conversation will store it)."""
        key = text.strip()
        if not key or not tokens:
            return
        self._tokens[key] = tuple(tokens)
        self._tokens.move_to_end(key)
        while len(self._tokens) > self._capacity:
            self._tokens.popitem(last=False)

    def get(self, text: str) -> tuple[int, ...] | None:
        """The generated tokens of an answer that became ``text``, if it is recent."""
        return self._tokens.get(text.strip())


@dataclass(frozen=True, slots=True)
class CacheCut:
    """Cache positions ``[begin, end)`` to remove, shifting the rest down (none when empty)."""

    begin: int
    end: int

    @property
    def length(self) -> int:
        """How many cached tokens go."""
        return self.end - self.begin


@dataclass(frozen=True, slots=True)
class ChatPrompt:
    """A prompt ready to evaluate, and how much of the cache it reuses."""

    tokens: list[int]
    dropped_turns: int  # old messages left out to fit
    cut: CacheCut  # what to remove from the cache first
    reused: int  # prompt tokens the cache holds once cut (the rest must be evaluated)


def build_prompt(
    messages: Sequence[ChatMessage],
    chatml: ChatMl,
    answers: AnswerTokens,
    cached: npt.NDArray[np.intc],
    *,
    max_prompt_tokens: int,
    max_read_tokens: int,
) -> ChatPrompt:
    """The prompt for ``messages`` (system messages first, then the conversation) ending in
    the assistant's cue, at most ``max_prompt_tokens`` long.

    ``cached`` is what the model's cache holds. Of the prompts that fit (the latest message
    always kept, its beginning cut if it alone is too long), the one with the most history is
    chosen among those that need at most ``max_read_tokens`` evaluated, so a conversation the
    cache does not hold (another session was served meanwhile, or a worker took this one
    over) starts answering after a bounded read; if none is that cheap, the cheapest.

    Raises:
        ValueError: the system prompt alone leaves no room for the conversation.
    """
    system_text = "\n".join(m.content.strip() for m in messages if m.role == "system")
    system = chatml.message("system", chatml.tokenize(system_text or FALLBACK_SYSTEM_PROMPT))
    cue = chatml.cue()
    turns = [
        (m.role, _content_tokens(m, chatml, answers))
        for m in messages
        if m.role != "system" and m.content.strip()
    ]
    room = max_prompt_tokens - len(system) - len(cue)
    role, content = turns[-1] if turns else ("user", ())
    framing = len(chatml.message(role, []))
    if room <= framing:
        raise ValueError(
            f"the system prompt needs {len(system)} tokens, leaving no room for the "
            f"conversation in the {max_prompt_tokens} available"
        )
    if turns:
        # A latest message too long for the prompt keeps its end, the part just said.
        turns[-1] = (role, content[max(0, len(content) - (room - framing)) :])
    blocks = [chatml.message(role, content) for role, content in turns]
    fits_from = len(blocks)
    used = 0
    while fits_from > 0 and used + len(blocks[fits_from - 1]) <= room:
        fits_from -= 1
        used += len(blocks[fits_from])

    best: ChatPrompt | None = None
    cheapest: ChatPrompt | None = None
    for first in range(fits_from, max(len(blocks), fits_from + 1)):
        tokens = [*system, *[t for block in blocks[first:] for t in block], *cue]
        cut, reused = _reuse(cached, tokens, len(system), chatml.start)
        prompt = ChatPrompt(tokens, first, cut, reused)
        cost = len(tokens) - reused
        if cost <= max_read_tokens:
            best = prompt
            break
        if cheapest is None or cost < len(cheapest.tokens) - cheapest.reused:
            cheapest = prompt
    chosen = best or cheapest
    assert chosen is not None  # the loop runs at least once
    return chosen


def _content_tokens(message: ChatMessage, chatml: ChatMl, answers: AnswerTokens) -> Tokens:
    # Stripped: the template's text between control tokens tokenizes exactly like these
    # pieces only when the content does not begin or end with blanks.
    if message.role == "assistant":
        generated = answers.get(message.content)
        if generated is not None:
            return generated
    return chatml.tokenize(message.content.strip())


def _reuse(
    cached: npt.NDArray[np.intc], tokens: list[int], system: int, start: int
) -> tuple[CacheCut, int]:
    """How much of ``tokens`` the cache can serve: the common prefix, or, when the cache holds
    the same system prompt, the common part after cutting out the messages that follow it."""
    wanted = np.asarray(tokens, dtype=cached.dtype)
    no_cut = CacheCut(0, 0)
    plain = _common_prefix(cached, wanted)
    if plain < system:
        return no_cut, min(plain, len(tokens) - 1)
    best_cut, best = no_cut, plain
    rest = wanted[system:]
    # A message starts with <|im_start|>: try cutting the cache back to each one after the
    # system prompt, and keep the cut that leaves the longest match.
    for begin in np.flatnonzero(cached[system:] == start) + system:
        if begin == system:
            continue
        matched = system + _common_prefix(cached[begin:], rest)
        if matched > best:
            best_cut, best = CacheCut(system, int(begin)), matched
    # At least the last token is evaluated, so that llama.cpp has fresh logits to sample from.
    return best_cut, min(best, len(tokens) - 1)


def _common_prefix(a: npt.NDArray[np.intc], b: npt.NDArray[np.intc]) -> int:
    n = min(len(a), len(b))
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if len(differ) else n
