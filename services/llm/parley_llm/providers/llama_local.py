"""The offline dialogue model: a small instruct model (see ``parley_llm.models``) through
llama.cpp.

Generation runs in a worker thread so the event loop keeps serving audio and the bus; tokens
cross back to the loop through ``call_soon_threadsafe`` into an ``asyncio.Queue``. A
``llama_cpp.Llama`` is not thread-safe, so one generation at a time holds it: there is one
model per process, shared by every provider instance and so by every session on the worker,
behind a lock that the others wait for (a turn cancelled while it waits never takes it). A
consumer that goes away stops its generation at the next token so the next turn is not kept
waiting.

The model's KV cache keeps the conversation between turns: each prompt continues the last
one with the answer's own tokens (``parley_llm.chat_prompt``), so a turn evaluates only what
the user just said. A session served after another one finds only the system prompt cached
and reads its history again, within a bounded number of tokens.
"""

from __future__ import annotations

import asyncio
import codecs
import threading
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

# Imported eagerly so that a missing llama-cpp-python fails when the provider is chosen (the
# registry turns this ImportError into "install parley-llm[local]"), not mid-conversation.
import llama_cpp
from llama_cpp import Llama
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from parley_common.errors import ProviderUnavailableError
from parley_common.settings import positive_int_env
from parley_llm.chat_prompt import AnswerTokens, CacheCut, ChatMl, ChatPrompt, build_prompt
from parley_llm.models import LocalModel, gguf_path, model_for, profile_from_env
from parley_llm.providers.base import ChatMessage, LlmUsage
from parley_llm.reply_filter import ReplyFilter

if TYPE_CHECKING:
    from llama_cpp.llama_types import ChatCompletionRequestMessage

THREADS_ENV = "PARLEY_LLM_THREADS"
DEFAULT_THREADS = 2
N_CTX = 4096
# Low temperature: the answers are facts and short replies, and small models drift when hot.
_TEMPERATURE = 0.3
_TOP_P = 0.8
_TOP_K = 20
_MIN_P = 0.05
_REPEAT_PENALTY = 1.05
# Room left in the context for rounding.
_CONTEXT_MARGIN = 8
# The history kept in the prompt, and how much of it may have to be read at once (a session
# the cache does not hold): reading costs ~8 ms a token for the 1.5B model on 2 cores, paid
# before the first word.
_MAX_PROMPT_TOKENS = 2048
_MAX_READ_TOKENS = 384
# The prompt is read in slices this long so that a cancelled turn waits for one slice at most:
# llama.cpp cannot be interrupted inside a decode.
_PROMPT_SLICE = 32
# How often a generation waiting for the model checks whether its consumer has gone.
_LOCK_POLL_S = 0.05
# Generations waiting for the model sit in these threads, not in the loop's default executor
# (which DNS lookups and ``to_thread`` calls elsewhere need); beyond four they wait in its queue.
_generation_threads = ThreadPoolExecutor(max_workers=4, thread_name_prefix="parley-llm")


@dataclass(frozen=True, slots=True)
class GenerationStats:
    """Measurements of one generation (times from ``time.monotonic``, durations in seconds)."""

    prompt_tokens: int
    reused_tokens: int  # prompt tokens the KV cache already held (not evaluated again)
    cut_tokens: int  # old turns cut out of the cache, the rest shifted down instead of re-read
    completion_tokens: int
    dropped_turns: int
    queued_s: float  # from the request until the model was free
    first_token_s: float | None  # model acquired -> first token (prompt evaluation included)
    decode_s: float  # first token -> last token
    started_at: float  # model acquired
    finished_at: float  # model released
    stopped_early: bool  # the consumer stopped it: cancelled, or the reply filter ended it
    tokens_after_stop: int  # tokens still sampled after the stop request
    finish_reason: str  # "stop", "length", or "cancelled"
    prompt: tuple[int, ...]  # what was evaluated (for tests and benchmarks)
    answer: tuple[int, ...]  # what was generated

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
    chatml: ChatMl
    answers: AnswerTokens  # read and written only by the thread holding ``lock``


# One Llama per (model, context, threads) per process: it is up to 1.1 GB and slow to load.
_loaded: dict[tuple[str, int, int], _LoadedModel] = {}
_loading = threading.Lock()


def threads_from_env() -> int:
    """The llama.cpp thread count: ``$PARLEY_LLM_THREADS``, default 2."""
    return positive_int_env(THREADS_ENV, DEFAULT_THREADS)


def _load(model: LocalModel, n_threads: int) -> _LoadedModel:
    key = (model.name, N_CTX, n_threads)
    with _loading:
        if key not in _loaded:
            llama = Llama(
                model_path=str(gguf_path(model)),
                n_ctx=N_CTX,
                n_threads=n_threads,
                n_threads_batch=n_threads,
                verbose=False,
            )
            _loaded[key] = _LoadedModel(llama, threading.Lock(), chatml_of(llama), AnswerTokens())
        return _loaded[key]


def chatml_of(llama: Llama) -> ChatMl:
    """The ChatML framing of ``llama``'s tokenizer, after checking that the model's own chat
    template renders a conversation exactly as ``ChatMl`` builds it.

    Raises ``ProviderUnavailableError`` for a model whose template is something else.
    """

    def special(text: str) -> int:
        tokens = llama.tokenize(text.encode(), add_bos=False, special=True)
        if len(tokens) != 1:
            raise ProviderUnavailableError(f"the local model has no {text} token (not ChatML)")
        return tokens[0]

    chatml = ChatMl(
        special("<|im_start|>"),
        special("<|im_end|>"),
        # special=False: text that looks like a control token ("<|im_end|>") stays plain text.
        lambda text: llama.tokenize(text.encode("utf-8"), add_bos=False, special=False),
    )
    probe = [
        ("system", "You are a voice assistant."),
        ("user", "What is 2 + 2?"),
        ("assistant", "It's 4."),
        ("user", "¿Y ahora?"),
    ]
    template = llama.metadata.get("tokenizer.chat_template", "")
    rendered = Jinja2ChatFormatter(template, eos_token="", bos_token="")(
        messages=cast(
            "list[ChatCompletionRequestMessage]",
            [{"role": role, "content": content} for role, content in probe],
        )
    ).prompt
    built = [t for role, text in probe for t in chatml.message(role, chatml.tokenize(text))]
    if llama.tokenize(rendered.encode(), add_bos=False, special=True) != built + chatml.cue():
        raise ProviderUnavailableError("the local model's chat template is not ChatML")
    return chatml


def _cut_cache(llama: Llama, cut: CacheCut) -> None:
    """Remove cache positions ``cut`` and shift the rest down, so old turns leave the context
    without the newer ones being evaluated again (llama.cpp re-rotates their keys)."""
    end = llama.n_tokens
    llama._ctx.kv_cache_seq_rm(0, cut.begin, cut.end)
    llama._ctx.kv_cache_seq_shift(0, cut.end, end, -cut.length)
    llama.input_ids[cut.begin : end - cut.length] = llama.input_ids[cut.end : end]
    llama.n_tokens = end - cut.length


def _can_shift(llama: Llama) -> bool:
    memory = llama._ctx.memory
    return memory is not None and bool(llama_cpp.llama_memory_can_shift(memory))


def _read_prompt(llama: Llama, prompt: ChatPrompt, stop: threading.Event) -> tuple[int, int]:
    """Make the cache hold all of ``prompt`` but its last token, which ``generate`` decodes
    before it samples. Returns how many prompt tokens were reused (-1 if a stop came first)
    and how many cached tokens were cut out."""
    tokens = prompt.tokens
    reused, cut = prompt.reused, 0
    if prompt.cut.length and _can_shift(llama):
        _cut_cache(llama, prompt.cut)
        cut = prompt.cut.length
    elif prompt.cut.length:
        reused = prompt.cut.begin  # this cache cannot shift: read the rest again
    # Also after a full match, so that generate() never trusts stale ids past n_tokens.
    llama.n_tokens = min(reused, llama.n_tokens)
    for begin in range(llama.n_tokens, len(tokens) - 1, _PROMPT_SLICE):
        if stop.is_set():
            return -1, cut
        # eval() first drops whatever the cache holds from n_tokens on.
        llama.eval(tokens[begin : min(begin + _PROMPT_SLICE, len(tokens) - 1)])
    return (-1 if stop.is_set() else reused), cut


class LocalLlamaProvider:
    """Streams answers from the offline model of ``$PARLEY_LOCAL_LLM`` (or ``model``), loaded
    once per process. ``on_stats`` (called on the event loop) receives measurements of every
    generation."""

    name = "local"

    def __init__(
        self,
        model: LocalModel | None = None,
        *,
        n_threads: int | None = None,
        on_stats: Callable[[GenerationStats], None] | None = None,
    ) -> None:
        self.model = model or model_for(profile_from_env())
        self._n_threads = n_threads or threads_from_env()
        self._on_stats = on_stats
        self._loaded: _LoadedModel | None = None

    async def warm_up(self) -> None:
        """Assemble (first run only) and load the model now, so the first turn does not wait
        seconds for it. Raises ``ModelNotInstalledError`` when the model package is missing."""
        await self._loaded_model()

    async def _loaded_model(self) -> _LoadedModel:
        if self._loaded is None:
            # Assembling and loading take seconds: keep them off the loop.
            self._loaded = await asyncio.to_thread(_load, self.model, self._n_threads)
        return self._loaded

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
        so the next generation can start at once. The profile chose the model: ``model`` is
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
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            # Shielded: a second cancellation must not orphan the worker's completion.
            stats = await asyncio.shield(worker)
            if usage is not None:
                usage.model = self.model.name
                if stats is not None:
                    usage.input_tokens = stats.prompt_tokens
                    usage.cached_input_tokens = stats.reused_tokens
                    usage.output_tokens = stats.completion_tokens
                    usage.finish_reason = stats.finish_reason

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
            stats = self._complete(model, messages, max_tokens, entered, stop, queue, to_loop)
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
        model: _LoadedModel,
        messages: list[ChatMessage],
        max_tokens: int,
        entered: float,
        stop: threading.Event,
        queue: asyncio.Queue[str | BaseException | None],
        to_loop: Callable[..., None],
    ) -> GenerationStats:
        """Read the prompt and generate, holding the model."""
        started = time.monotonic()
        llama = model.llama
        prompt = build_prompt(
            messages,
            model.chatml,
            model.answers,
            llama.input_ids[: llama.n_tokens],
            max_prompt_tokens=min(_MAX_PROMPT_TOKENS, N_CTX - max_tokens - _CONTEXT_MARGIN),
            max_read_tokens=_MAX_READ_TOKENS,
        )
        reused, cut = _read_prompt(llama, prompt, stop)
        answer: list[int] = []
        first_at: float | None = None
        last_at = started
        after_stop = 0
        finish, looped = "cancelled", False
        if reused >= 0:
            reply = ReplyFilter()
            # Both offline models are byte-level BPE: a token's bytes do not depend on its
            # neighbours, but a character may span two tokens.
            text = codecs.getincrementaldecoder("utf-8")(errors="replace")
            said: list[str] = []
            tokens = llama.generate(
                prompt.tokens,
                top_k=_TOP_K,
                top_p=_TOP_P,
                min_p=_MIN_P,
                temp=_TEMPERATURE,
                repeat_penalty=_REPEAT_PENALTY,
            )
            try:
                for token in tokens:
                    if stop.is_set():
                        after_stop += 1
                        break
                    if llama_cpp.llama_vocab_is_eog(llama._model.vocab, token):
                        finish = "stop"
                        break
                    answer.append(token)
                    last_at = time.monotonic()
                    first_at = first_at or last_at
                    if delta := reply.feed(text.decode(llama.detokenize([token]))):
                        said.append(delta)
                        to_loop(queue.put_nowait, delta)
                    if reply.finished:  # looping: what follows is never said
                        finish, looped = "stop", True
                        break
                    if len(answer) >= max_tokens:
                        finish = "length"
                        break
            finally:
                tokens.close()
            if finish != "cancelled" and not looped:
                if tail := reply.flush() + text.decode(b"", final=True):
                    said.append(tail)
                    to_loop(queue.put_nowait, tail)
                # What the conversation will store, with the tokens the cache holds for it.
                model.answers.remember("".join(said), answer)
        return GenerationStats(
            prompt_tokens=len(prompt.tokens),
            reused_tokens=max(0, reused),
            cut_tokens=cut,
            completion_tokens=len(answer),
            dropped_turns=prompt.dropped_turns,
            queued_s=started - entered,
            first_token_s=None if first_at is None else first_at - started,
            decode_s=0.0 if first_at is None else last_at - first_at,
            started_at=started,
            finished_at=time.monotonic(),
            stopped_early=stop.is_set() or looped,
            tokens_after_stop=after_stop,
            finish_reason=finish,
            prompt=tuple(prompt.tokens),
            answer=tuple(answer),
        )
