"""The offline dialogue model: Gemma 3 270M (a tiny base model) through llama.cpp.

Generation runs in a worker thread so the event loop keeps serving audio and the bus; tokens
cross back to the loop through ``call_soon_threadsafe`` into an ``asyncio.Queue``. A
``llama_cpp.Llama`` is not thread-safe, so one generation at a time holds it (per process,
shared by every provider instance), and a consumer that goes away stops its generation at the
next token so the next turn is not kept waiting.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

# Imported eagerly so that a missing llama-cpp-python fails when the provider is chosen (the
# registry turns this ImportError into "install parley-llm[local]"), not mid-conversation.
from llama_cpp import Llama, StoppingCriteriaList

from parley_common.settings import positive_int_env
from parley_llm.models import gguf_model_path
from parley_llm.prompting import ReplyFilter, build_prompt
from parley_llm.providers.base import ChatMessage, LlmUsage

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from llama_cpp.llama_types import CreateCompletionStreamResponse

# What ``LlmUsage.model`` reports for the offline model.
LOCAL_MODEL_NAME = "gemma-3-270m-q4_k_m"
THREADS_ENV = "PARLEY_LLM_THREADS"
DEFAULT_THREADS = 2
N_CTX = 2048
# Mild sampling: greedy decoding makes a tiny model loop, hot sampling makes it ramble.
_TEMPERATURE = 0.7
_TOP_P = 0.9
_REPEAT_PENALTY = 1.1
# Room left in the context for the BOS token and rounding in per-line token counting.
_CONTEXT_MARGIN = 8
# Whenever the prompt must be read again (a new session on the model, or old turns dropped),
# that costs ~2.4 ms a token on 2 cores, before the first word; a 270M model gains little from
# a longer history anyway.
_MAX_PROMPT_TOKENS = 1024
# The prompt is read in slices this long (as fast as one batch on a CPU) so that a cancelled
# turn waits ~150 ms at most: llama.cpp cannot be interrupted inside a decode.
_PROMPT_SLICE = 64
# How often a generation waiting for the model checks whether its consumer has gone.
_LOCK_POLL_S = 0.05
# Generations waiting for the model sit in these threads, not in the loop's default executor
# (which DNS lookups and ``to_thread`` calls elsewhere need); beyond four they wait in its queue.
_generation_threads = ThreadPoolExecutor(max_workers=4, thread_name_prefix="parley-llm")


@dataclass(frozen=True, slots=True)
class GenerationStats:
    """Measurements of one generation (times from ``time.monotonic``, durations in seconds)."""

    prompt_tokens: int
    completion_tokens: int
    dropped_turns: int
    queued_s: float  # from the request until the model was free
    first_token_s: float | None  # model acquired -> first token (prompt evaluation included)
    decode_s: float  # first token -> last token
    started_at: float  # model acquired
    finished_at: float  # model released
    stopped_early: bool  # the consumer stopped it: cancelled, or the reply filter ended it
    tokens_after_stop: int  # tokens still sampled after the stop request

    @property
    def tokens_per_second(self) -> float | None:
        """Decoding speed after the first token, or None when too few tokens were made."""
        if self.completion_tokens < 2 or self.decode_s <= 0:
            return None
        return (self.completion_tokens - 1) / self.decode_s


@dataclass(slots=True)
class _LoadedModel:
    llama: Llama
    lock: threading.Lock


# One Llama per (file, context, threads) per process: it is 250 MB and slow to load.
_loaded: dict[tuple[Path, int, int], _LoadedModel] = {}
_loading = threading.Lock()


def threads_from_env() -> int:
    """The llama.cpp thread count: ``$PARLEY_LLM_THREADS``, default 2."""
    return positive_int_env(THREADS_ENV, DEFAULT_THREADS)


def _load(model_path: Path | None, n_threads: int) -> _LoadedModel:
    path = model_path or gguf_model_path()
    key = (path, N_CTX, n_threads)
    with _loading:
        if key not in _loaded:
            llama = Llama(
                model_path=str(path),
                n_ctx=N_CTX,
                n_threads=n_threads,
                n_threads_batch=n_threads,
                verbose=False,
            )
            _loaded[key] = _LoadedModel(llama=llama, lock=threading.Lock())
        return _loaded[key]


class _TokenMeter:
    """Passed to llama.cpp as a stopping criterion, which it calls after sampling each token:
    counts and timestamps tokens, and ends generation once a stop is requested, so a cancelled
    turn costs at most the token in flight."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.tokens = 0
        self.after_stop = 0
        self.first_at: float | None = None
        self.last_at = 0.0
        self._seen = 0

    def __call__(self, input_ids: npt.NDArray[np.intc], logits: npt.NDArray[np.single]) -> bool:
        # llama-cpp-python calls it once more when the completion ends, with no new token.
        if len(input_ids) > self._seen:
            self._seen = len(input_ids)
            self.tokens += 1
            self.last_at = time.monotonic()
            if self.first_at is None:
                self.first_at = self.last_at
            if self.stop.is_set():
                self.after_stop += 1
        return self.stop.is_set()


def _read_prompt(llama: Llama, tokens: list[int], stop: threading.Event) -> bool:
    """Evaluate the part of the prompt the model has not seen yet, a slice at a time, and
    return False if a stop came first. The last token is left to ``create_completion``, which
    then finds the rest cached, decodes that token and samples."""
    seen = llama.input_ids[: llama.n_tokens].tolist()
    cached = Llama.longest_token_prefix(seen, tokens[:-1])
    if len(tokens) - 1 - cached <= _PROMPT_SLICE:
        return True  # one slice or less: create_completion reads it as quickly
    llama.n_tokens = cached  # eval() first drops whatever the cache holds beyond this
    for begin in range(cached, len(tokens) - 1, _PROMPT_SLICE):
        if stop.is_set():
            return False
        llama.eval(tokens[begin : min(begin + _PROMPT_SLICE, len(tokens) - 1)])
    return not stop.is_set()


class LocalLlamaProvider:
    """Streams answers from the offline Gemma 3 270M model, loaded lazily once per process.

    It is a small base model run on the CPU: fast, private and offline, but its answers are
    short and often wrong. ``on_stats`` (called on the event loop) receives measurements of
    every generation.
    """

    name = "local"

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        n_threads: int | None = None,
        on_stats: Callable[[GenerationStats], None] | None = None,
    ) -> None:
        self._model_path = model_path
        self._n_threads = n_threads or threads_from_env()
        self._on_stats = on_stats
        self._model: _LoadedModel | None = None

    async def warm_up(self) -> None:
        """Assemble (first run only) and load the model now, so the first turn does not wait
        seconds for it. Raises ``ModelNotInstalledError`` when the model package is missing."""
        await self._loaded_model()

    async def _loaded_model(self) -> _LoadedModel:
        if self._model is None:
            # Assembling and loading take seconds: keep them off the loop.
            self._model = await asyncio.to_thread(_load, self._model_path, self._n_threads)
        return self._model

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        max_tokens: int,
        *,
        model: str | None = None,
        usage: LlmUsage | None = None,
    ) -> AsyncGenerator[str, None]:
        """Yield the answer as text deltas (see ``LlmProvider.stream``).

        Closing the iterator stops the generation at the next token (or the next slice of
        the prompt, while it is being read) and waits for the worker to let go of the model,
        so the next generation can start at once. There is one local model: ``model`` is
        ignored; ``usage`` gets the token counts once the worker has let go.
        """
        loaded = await self._loaded_model()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | BaseException | None] = asyncio.Queue()
        stop = threading.Event()

        def to_loop(callback: Callable[..., object], *args: object) -> None:
            try:
                loop.call_soon_threadsafe(callback, *args)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                stop.set()

        worker = loop.run_in_executor(
            _generation_threads,
            self._generate,
            time.monotonic(),
            loaded,
            list(messages),
            max(1, min(max_tokens, N_CTX // 2)),
            stop,
            to_loop,
            queue,
        )
        reply = ReplyFilter()
        try:
            while not reply.finished:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                text = reply.flush() if item is None else reply.feed(item)
                if text:
                    yield text
                if item is None:
                    break
        finally:
            stop.set()
            # Shielded: a second cancellation must not orphan the worker's completion.
            stats = await asyncio.shield(worker)
            if usage is not None:
                usage.model = LOCAL_MODEL_NAME
                if stats is not None:
                    usage.input_tokens = stats.prompt_tokens
                    usage.output_tokens = stats.completion_tokens

    def _generate(
        self,
        entered: float,
        model: _LoadedModel,
        messages: list[ChatMessage],
        max_tokens: int,
        stop: threading.Event,
        to_loop: Callable[..., None],
        queue: asyncio.Queue[str | BaseException | None],
    ) -> GenerationStats | None:
        """Runs in a worker thread: waits for the model, then streams tokens to ``queue``;
        returns the measurements, or None when it never ran or failed."""
        # Poll rather than block, so a turn cancelled while queued never takes the model.
        while not model.lock.acquire(timeout=_LOCK_POLL_S):
            if stop.is_set():
                return None
        try:
            stats = self._complete(model.llama, messages, max_tokens, entered, stop, queue, to_loop)
        except Exception as exc:
            to_loop(queue.put_nowait, exc)
            return None
        finally:
            model.lock.release()
        to_loop(queue.put_nowait, None)
        if self._on_stats is not None:
            to_loop(self._on_stats, stats)
        return stats

    def _complete(
        self,
        llama: Llama,
        messages: list[ChatMessage],
        max_tokens: int,
        entered: float,
        stop: threading.Event,
        queue: asyncio.Queue[str | BaseException | None],
        to_loop: Callable[..., None],
    ) -> GenerationStats:
        started = time.monotonic()

        def tokenize(text: str) -> list[int]:
            # special=False: text that looks like a control token ("<bos>") stays plain text.
            return llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)

        prompt = build_prompt(
            messages,
            max_prompt_tokens=min(_MAX_PROMPT_TOKENS, N_CTX - max_tokens - _CONTEXT_MARGIN),
            count_tokens=lambda text: len(tokenize(text)),
        )
        tokens = [llama.token_bos(), *tokenize(prompt.text)]
        meter = _TokenMeter(stop)
        if _read_prompt(llama, tokens, stop):
            chunks = cast(
                "Generator[CreateCompletionStreamResponse, None, None]",
                llama.create_completion(
                    tokens,
                    stream=True,
                    stop=list(prompt.stop),
                    max_tokens=max_tokens,
                    temperature=_TEMPERATURE,
                    top_p=_TOP_P,
                    repeat_penalty=_REPEAT_PENALTY,
                    stopping_criteria=StoppingCriteriaList([meter]),
                ),
            )
            try:
                for chunk in chunks:
                    if stop.is_set():
                        break
                    text: str = chunk["choices"][0]["text"]
                    if text:
                        to_loop(queue.put_nowait, text)
            finally:
                chunks.close()
        return GenerationStats(
            prompt_tokens=len(tokens),
            completion_tokens=meter.tokens,
            dropped_turns=prompt.dropped_turns,
            queued_s=started - entered,
            first_token_s=None if meter.first_at is None else meter.first_at - started,
            decode_s=0.0 if meter.first_at is None else meter.last_at - meter.first_at,
            started_at=started,
            finished_at=time.monotonic(),
            stopped_early=stop.is_set(),
            tokens_after_stop=meter.after_stop,
        )
