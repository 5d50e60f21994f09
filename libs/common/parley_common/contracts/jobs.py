"""Messages of the one-shot job protocol (``parley_common.jobs``) and of its jobs.

Audio never travels in these models: it goes as raw bytes in chunk messages whose kind and
sequence number are headers. Only the offer, the acceptance and the final outcome are JSON.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any, Literal

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


# Voice cloning (the ``clone`` service): a voice cloned from uploaded samples, deleted, or
# resolved to the provider's own voice id for a TTS session that names it.

CLONE_CREATE = "create"
CLONE_DELETE = "delete"
CLONE_RESOLVE = "resolve"

#: The name a cloned voice has at its provider: never the user's own name (a provider
#: account is shared by every user), so that TTS voice lists can leave these voices out.
PROVIDER_VOICE_PREFIX = "parley-voice-"


class CloneProvider(StrEnum):
    """The TTS providers that clone voices from samples."""

    ELEVENLABS = "elevenlabs"
    PLAYHT = "playht"  # legacy: its public API was shut down on 2025-12-31


assert {p.value for p in CloneProvider} <= {p.value for p in TtsProvider}


class CustomVoiceStatus(StrEnum):
    """Where a cloned voice is: its provider still working, usable, or refused."""

    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


class SampleFormat(_Msg):
    """What a provider wants its samples as: one file per sample, or all in one file."""

    encoding: Literal["mp3", "wav", "flac"]
    sample_rate: int
    one_file: bool = False


#: Every sample is re-encoded before it leaves the gateway (which also drops its tags).
CLONE_SAMPLE_FORMATS: dict[CloneProvider, SampleFormat] = {
    CloneProvider.ELEVENLABS: SampleFormat(encoding="mp3", sample_rate=44_100),
    # PlayHT's instant clone takes one sample file: the samples are joined into it.
    CloneProvider.PLAYHT: SampleFormat(encoding="mp3", sample_rate=24_000, one_file=True),
}


class CloneSample(_Msg):
    """One converted sample of a clone job; its bytes are ``size`` bytes of the upload, in
    the order of the list."""

    filename: str
    size: int = Field(ge=1)
    duration_s: float = Field(ge=0)


class CloneJobParams(_Msg):
    """Clone a voice for ``owner`` from the samples uploaded with the job (already checked
    and converted to ``CLONE_SAMPLE_FORMATS[provider]`` by the gateway)."""

    owner: str
    name: str = Field(min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=1000)
    provider: CloneProvider
    samples: list[CloneSample] = Field(min_length=1)
    #: How many samples the user sent, the unusable ones included.
    uploaded: int = Field(ge=1)
    total_duration_s: float = Field(ge=0)
    warnings: list[str] = Field(default_factory=list)


def custom_voice_uuid(voice: str | None) -> uuid.UUID | None:
    """The cloned voice a session's ``voice`` names, when it names one: custom voices are
    named by their id, a UUID, which no provider's own voice id is."""
    if voice is None:
        return None
    try:
        return uuid.UUID(voice)
    except ValueError:
        return None


class CustomVoiceRef(_Msg):
    """A cloned voice by its Parley id, seen by ``owner`` (None: by anyone, for a caller
    that already checked who may see it). Also what the create and delete jobs answer."""

    voice_id: str
    owner: str | None = None


class ResolvedVoice(_Msg):
    """A ready cloned voice as its provider knows it (for the TTS worker of a session)."""

    voice_id: str
    provider: CloneProvider
    provider_voice_id: str
