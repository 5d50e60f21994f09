"""Messages of the one-shot job protocol (``parley_common.jobs``) and of its two jobs.

Audio never travels in these models: it goes as raw bytes in chunk messages whose kind and
sequence number are headers. Only the offer, the acceptance and the final outcome are JSON.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from parley_common.contracts.bus import Word
from parley_common.contracts.session import SttProvider, TtsProvider


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JobOffer(_Msg):
    """Sent to a service's job subject (its queue group): one worker takes the job."""

    #: The requester's inbox, where the worker sends output chunks, heartbeats and the end.
    reply_to: str
    params: str  # the job's params model as JSON, validated by the worker that takes it


class JobAccepted(_Msg):
    """The taking worker's answer: where to send the job's input chunks."""

    job_subject: str
    worker_id: str


class JobFailure(_Msg):
    """A worker-side error as the error tree knows it: never a vendor's text."""

    #: The error's class and its ancestors up to ParleyError, by name: the requester raises
    #: the first one it knows (a service's own subclass may be unknown to the gateway).
    error_classes: list[str]
    code: str
    message: str
    provider: str | None = None
    details: list[dict[str, Any]] = Field(default_factory=list)
    retry_after_s: float | None = None


class JobOutcome(_Msg):
    """The last message of a job: its JSON result, or why it failed."""

    result: str | None = None  # the job's result model as JSON
    error: JobFailure | None = None


# The two jobs of S2's REST voice routes, and their kinds (``subjects.job(service, kind)``).

STT_TRANSCRIBE = "transcribe"
TTS_SYNTHESIZE = "synthesize"


class SttJobParams(_Msg):
    """Transcribe an upload (sent as PCM16 LE mono 16 kHz chunks)."""

    provider: SttProvider = SttProvider.LOCAL
    model: str | None = None
    language: str | None = None  # None: detect


class SttJobResult(_Msg):
    """S2's transcription answer."""

    text: str
    confidence: float | None
    language: str | None
    duration: float = Field(description="seconds of audio transcribed")
    words: list[Word]


class TtsJobParams(_Msg):
    """Synthesize ``text`` (no input chunks); the output chunks are PCM16 LE mono."""

    text: str
    provider: TtsProvider = TtsProvider.LOCAL
    voice: str | None = None
    model: str | None = None
    speed: float | None = None


class TtsJobResult(_Msg):
    """What the output chunks of a synthesis are."""

    sample_rate: int
