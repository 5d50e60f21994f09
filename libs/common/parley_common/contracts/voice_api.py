"""S2's voice REST bodies: ``POST /api/v1/voice/tts`` and ``POST /api/v1/voice/chat``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from parley_common.contracts.audio import PITCH_RANGE, SPEED_RANGE, AudioFormat, Encoding
from parley_common.contracts.rest import VoiceConfig
from parley_common.contracts.session import TtsProvider

__all__ = ["ChatTimings", "ChatVoiceConfig", "TtsRequest", "VoiceChatResponse"]

# OpenAI's speech API takes 4096; a long paragraph, not a book.
MAX_TTS_TEXT_CHARS = 5000


class TtsRequest(BaseModel):
    """S2's synthesis request, plus Parley's ``provider`` and ``model``."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_TTS_TEXT_CHARS)
    voice: str | None = Field(None, description="the provider's default when absent")
    # Strict: a JSON true is not the number 1.
    speed: float = Field(
        1.0,
        ge=SPEED_RANGE[0],
        le=SPEED_RANGE[1],
        strict=True,
        description="2.0 speaks in half the time",
    )
    pitch: float = Field(
        0.0,
        ge=PITCH_RANGE[0],
        le=PITCH_RANGE[1],
        strict=True,
        description="semitones; keeps the duration",
    )
    encoding: Encoding = "mp3"
    sample_rate: int = Field(
        24000,
        strict=True,
        description="Hz; mp3 takes the MPEG rates 8000-48000, opus 8000/12000/16000/24000/"
        "48000, wav/flac/pcm any rate from 8000 to 192000",
    )
    provider: TtsProvider = TtsProvider.LOCAL
    model: str | None = None


class ChatVoiceConfig(VoiceConfig):
    """``voice_config``: S2's voice options (plus Parley's provider choices) for this turn.
    Only the options given count; the chatbot's stored configuration fills in the rest. The
    session options (voice, speed, language, providers...) are fixed when a conversation
    starts; ``tts_pitch`` and ``audio_format`` shape each answer's file."""

    model_config = ConfigDict(extra="forbid")

    audio_format: AudioFormat = Field(
        default="mp3", description="the answer's file; mp3 unless given"
    )


class ChatTimings(BaseModel):
    """Where the turn's time went, in milliseconds."""

    decode_ms: float = Field(description="the upload decoded to 16 kHz PCM")
    stt_ms: float = Field(description="the recording fed to the session -> its final transcript")
    llm_ms: float = Field(description="the final transcript -> the whole answer's text")
    tts_ms: float = Field(description="the whole answer's text -> its last audio")
    encode_ms: float = Field(description="the answer's audio encoded as a file")
    total_ms: float = Field(description="the request's body received -> this response")
    llm_first_token_ms: float | None = Field(
        default=None, description="as the dialogue worker measured"
    )
    tts_first_byte_ms: float | None = Field(default=None, description="as the TTS worker measured")


class VoiceChatResponse(BaseModel):
    """The answered turn; ``conversation_id`` continues the conversation."""

    success: Literal[True] = True
    conversation_id: str = Field(description="the session id; send it to continue")
    chatbot_id: str
    turn_id: int
    transcript: str = Field(description="what the user said, as the session's STT heard it")
    confidence: float | None = None
    language: str | None = None
    response_text: str
    audio_data: str = Field(description="the answer's audio file, base64")
    audio_format: AudioFormat
    audio_mime_type: str
    sample_rate: int = Field(description="Hz of the file (Opus players output 48 kHz)")
    audio_duration_s: float
    timings: ChatTimings
