"""A zero-latency TEST DOUBLE for speech-to-text (tests and benchmarks only)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from parley_stt.providers.base import PartialSink, SttResult

__all__ = ["DEFAULT_TEXT", "TEXT_ENV", "ScriptedSttProvider", "ScriptedUtterance"]

TEXT_ENV = "PARLEY_SCRIPTED_STT_TEXT"
DEFAULT_TEXT = "hello there"


@dataclass(slots=True)
class ScriptedUtterance:
    """What one stream of the double received."""

    text: str
    language: str | None
    model: str | None = None
    audio_bytes: int = 0
    finishes: int = 0
    closed: bool = False


class ScriptedSttStream:
    """One utterance of :class:`ScriptedSttProvider`: answers instantly with its script line."""

    def __init__(self, utterance: ScriptedUtterance) -> None:
        self._utterance = utterance

    async def feed(self, pcm: bytes) -> None:
        """Count the audio; its content is ignored."""
        self._utterance.audio_bytes += len(pcm)

    async def interim(self) -> SttResult | None:
        """The script line as a partial once any audio arrived, else None."""
        if self._utterance.audio_bytes == 0:
            return None
        return self._result(is_final=False)

    async def finish(self) -> SttResult:
        """The script line as the final transcript, whatever was fed."""
        self._utterance.finishes += 1
        return self._result(is_final=True)

    async def aclose(self) -> None:
        """Mark the utterance closed."""
        self._utterance.closed = True

    def _result(self, *, is_final: bool) -> SttResult:
        return SttResult(
            text=self._utterance.text,
            is_final=is_final,
            confidence=1.0,
            language=self._utterance.language or "en",
        )


class ScriptedSttProvider:
    """TEST DOUBLE, not a recogniser: every utterance "hears" the next line of a script.

    Lets tests and benchmarks drive the pipeline without loading a model and without any
    recognition latency. It is never selected by default; a session or test has to ask for
    ``"scripted"`` by name. The script is ``script``, else the single line in
    ``$PARLEY_SCRIPTED_STT_TEXT``, else ``DEFAULT_TEXT``; after its last line it starts over.
    Each opened stream is recorded in ``utterances``.
    """

    name = "scripted"
    pushes_partials = False

    def __init__(self, script: Sequence[str] | None = None) -> None:
        lines = list(script) if script is not None else [os.environ.get(TEXT_ENV, DEFAULT_TEXT)]
        if not lines:
            raise ValueError("the script needs at least one line")
        self.script = lines
        self.utterances: list[ScriptedUtterance] = []

    async def open(
        self,
        language: str | None,
        *,
        model: str | None = None,
        on_partial: PartialSink | None = None,
    ) -> ScriptedSttStream:
        """Start the next utterance of the script (``model`` is recorded, ``on_partial``
        unused: the double answers polls only)."""
        text = self.script[len(self.utterances) % len(self.script)]
        utterance = ScriptedUtterance(text=text, language=language, model=model)
        self.utterances.append(utterance)
        return ScriptedSttStream(utterance)
