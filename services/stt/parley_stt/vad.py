"""Streaming voice activity detection: Silero VAD v6 run directly with onnxruntime.

The model is an LSTM over 32 ms frames (512 samples at 16 kHz). Each call takes the frame
prefixed by the last 64 samples of the previous frame plus the LSTM state ``h``/``c``, and
returns the speech probability and the next state, so a stream keeps both between calls.
"""

from __future__ import annotations

import threading
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from parley_stt.models import silero_vad_path
from parley_stt.onnx import single_thread_session
from parley_stt.vad_graph import batched_silero

__all__ = [
    "CONTEXT_SAMPLES",
    "FRAME_MS",
    "FRAME_SAMPLES",
    "SAMPLE_RATE",
    "SileroVad",
    "VadFrame",
    "VadFrames",
    "batched_session",
    "preload",
]

SAMPLE_RATE = 16_000
FRAME_SAMPLES = 512
FRAME_MS = FRAME_SAMPLES * 1000 // SAMPLE_RATE
_FRAME_BYTES = FRAME_SAMPLES * 2
CONTEXT_SAMPLES = 64
_STATE_SHAPE = (1, 1, 128)
# The signature of faster-whisper's silero_vad_v6.onnx; checked at load so a different file
# fails loudly instead of producing garbage probabilities.
_INPUTS = {
    "input": ["seq_len", CONTEXT_SAMPLES + FRAME_SAMPLES],
    "h": [*_STATE_SHAPE],
    "c": [*_STATE_SHAPE],
}
# The same model rewritten so that rows are streams (parley_stt.vad_graph).
_BATCHED_INPUTS = {**_INPUTS, "h": [1, "batch", 128], "c": [1, "batch", 128]}
_OUTPUTS = ("speech_probs", "hn", "cn")

_sessions: dict[bool, Any] = {}
_session_lock = threading.Lock()


def _load(batched: bool) -> Any:
    path = silero_vad_path()
    if not batched:
        return single_thread_session(path, "Silero VAD")
    return single_thread_session(batched_silero(path.read_bytes()), "Silero VAD")


def _session_of(batched: bool) -> Any:
    """The process-wide inference session (``batched``: one row per stream, see
    :func:`batched_session`); it is stateless, so every stream can share it."""
    with _session_lock:
        if batched not in _sessions:
            session = _load(batched)
            expected = _BATCHED_INPUTS if batched else _INPUTS
            inputs = {i.name: list(i.shape) for i in session.get_inputs()}
            outputs = tuple(o.name for o in session.get_outputs())
            if any(inputs.get(name) != shape for name, shape in expected.items()) or (
                outputs != _OUTPUTS
            ):
                raise RuntimeError(
                    f"unexpected Silero VAD signature: inputs {inputs}, outputs {outputs}"
                )
            _sessions[batched] = session
        return _sessions[batched]


def _shared_session() -> Any:
    """The session the worker's streams share: the batched one."""
    return _session_of(batched=True)


def batched_session() -> Any:
    """The process-wide Silero session whose ``input`` row ``i`` is stream ``i``'s next
    context+frame and whose ``h``/``c`` are ``(1, rows, 128)``: one call for many streams."""
    return _shared_session()


def preload() -> None:
    """Load the model the worker's sessions use now (blocking: call it in a thread at worker
    start-up), so that no session's first frame waits for it."""
    batched_session()


class SileroVad:
    """Speech probability of consecutive 32 ms frames of one audio stream.

    Create one per stream (it carries the stream's recurrent state); the ONNX session behind it
    is loaded on first use and shared by all instances. Not safe to use from two threads at
    once, but different instances are.
    """

    def __init__(self) -> None:
        self._session = _session_of(batched=False)
        # The input row is [64 context samples | 512 frame samples], reused across calls.
        self._input = np.zeros((1, CONTEXT_SAMPLES + FRAME_SAMPLES), dtype=np.float32)
        self._h = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(_STATE_SHAPE, dtype=np.float32)

    def reset(self) -> None:
        """Forget the stream so far, as if newly created."""
        self._input.fill(0.0)
        self._h = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(_STATE_SHAPE, dtype=np.float32)

    def probability(self, frame: npt.NDArray[np.float32]) -> float:
        """Speech probability (0..1) of the next 512-sample frame, float samples in -1..1."""
        if frame.shape != (FRAME_SAMPLES,):
            raise ValueError(f"a VAD frame is {FRAME_SAMPLES} samples, got shape {frame.shape}")
        # The previous frame's tail becomes this frame's context.
        self._input[0, :CONTEXT_SAMPLES] = self._input[0, -CONTEXT_SAMPLES:]
        self._input[0, CONTEXT_SAMPLES:] = frame
        probs, self._h, self._c = self._session.run(
            None, {"input": self._input, "h": self._h, "c": self._c}
        )
        return float(probs[0])


class VadFrame(NamedTuple):
    """The speech probability of one 32 ms frame."""

    offset_ms: int
    """Start of the frame, in ms since the stream began (or was last reset)."""
    probability: float


class VadFrames:
    """Runs a :class:`SileroVad` over PCM16 LE mono 16 kHz bytes arriving in any chunk size.

    Network frames (e.g. 20 ms = 640 bytes) do not line up with the model's 32 ms frames, so
    the remainder of each push waits for the next one. ``vad`` defaults to a new SileroVad.
    """

    def __init__(self, vad: SileroVad | None = None) -> None:
        self._vad = vad if vad is not None else SileroVad()
        self._pending = bytearray()
        self._frames_done = 0

    def push(self, pcm: bytes) -> list[VadFrame]:
        """Add audio; return one result per complete 512-sample frame now available."""
        self._pending += pcm
        usable = len(self._pending) - len(self._pending) % _FRAME_BYTES
        if usable == 0:
            return []
        chunk = bytes(self._pending[:usable])
        del self._pending[:usable]
        samples = np.frombuffer(chunk, dtype="<i2").astype(np.float32) / 32768.0
        frames = samples.reshape(-1, FRAME_SAMPLES)
        results = []
        for frame in frames:
            offset_ms = self._frames_done * FRAME_MS
            results.append(VadFrame(offset_ms, self._vad.probability(frame)))
            self._frames_done += 1
        return results

    def reset(self) -> None:
        """Drop buffered audio and the VAD state; offsets restart at 0."""
        self._pending.clear()
        self._frames_done = 0
        self._vad.reset()
