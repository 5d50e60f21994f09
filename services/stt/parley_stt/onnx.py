"""The STT service's small ONNX models (Silero VAD, Smart Turn) on onnxruntime, one way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from parley_common.errors import ModelNotInstalledError

__all__ = ["single_thread_session"]


def single_thread_session(path: Path | bytes, what: str) -> Any:
    """An inference session for the model at ``path`` (or serialized in ``path``; ``what``
    names it in errors) on one CPU thread: these models take a fraction of a core, thread
    pools would cost more in wake-ups than they save, and the cores belong to Whisper."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ModelNotInstalledError(f"{what} needs onnxruntime: pip install parley-stt") from exc
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    model = str(path) if isinstance(path, Path) else path
    return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])
