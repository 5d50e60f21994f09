"""REST bodies of the gateway: the ``/api/v1`` shapes and S1's ``/api/voice`` shapes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from parley_common.contracts.audio import AudioFormat
from parley_common.contracts.bus import Emotion, LatencyStages, ProviderStatus, Role, VoiceEntry
from parley_common.contracts.jobs import CloneProvider, CustomVoiceStatus
from parley_common.contracts.knowledge import KnowledgeSource
from parley_common.contracts.session import (
    InterruptSensitivity,
    LlmProvider,
    ResponseStyle,
    SessionConfig,
    SessionStatus,
    SttProvider,
    Text,
    TtsProvider,
)
from parley_common.contracts.summaries import S1SessionSummary, SessionSummary
from parley_common.contracts.tools import ToolCallView
from parley_common.languages import LANGUAGE_TAG_PATTERN, check_language


class SessionView(BaseModel):
    """A session as ``/api/v1`` returns it."""

    id: str
    status: SessionStatus
    user_id: str
    chatbot_id: str | None
    config: SessionConfig
    ws_url: str
    started_at: datetime
    ended_at: datetime | None = None
    duration_seconds: float | None = None
    total_turns: int = 0
    interruptions_count: int = 0
    summary: SessionSummary | None = None


class S1Session(BaseModel):
    """The ``session`` object of S1's start response (camelCase on the wire)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    id: str
    status: SessionStatus
    config: dict[str, Any]
    ws_url: str


class S1StartResponse(BaseModel):
    """S1's ``POST /api/voice/start`` answer: ``{"success": true, "session": {...}}``."""

    success: Literal[True] = True
    session: S1Session


class TranscriptEntry(BaseModel):
    """One turn of a conversation as stored."""

    turn_id: int
    role: Role
    text: str
    confidence: float | None = None
    language: str | None = None
    interrupted: bool = False
    started_at: datetime | None = None
    ended_at: datetime | None = None
    # An answer given from the knowledge base: the passages its prompt held.
    sources: list[KnowledgeSource] = Field(default_factory=list)
    # A user's turn in a session that detects emotion: how it sounded.
    emotion: Emotion | None = None
    # An answer that called tools: each call, in order.
    tool_calls: list[ToolCallView] = Field(default_factory=list)


class TranscriptView(BaseModel):
    """``GET /api/v1/sessions/{id}/transcript`` (and S1's alias, wrapped with ``success``)."""

    session_id: str
    entries: list[TranscriptEntry]
    summary: SessionSummary | None = None


class ErrorDetail(BaseModel):
    """What went wrong, in a form a client can branch on (``code``) and show (``message``)."""

    code: str
    message: str
    details: list[dict[str, Any]] = Field(default_factory=list)


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer of the gateway."""

    success: Literal[False] = False
    error: ErrorDetail


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class S1TranscriptEntry(_Camel):
    """One turn in S1's transcript answer."""

    turn_id: int
    role: Role
    text: str
    confidence: float | None = None
    interrupted: bool = False
    timestamp: datetime | None = None
    emotion: Emotion | None = None


class S1TranscriptResponse(_Camel):
    """S1's ``GET /api/voice/{id}/transcript``."""

    success: Literal[True] = True
    session_id: str
    transcript: list[S1TranscriptEntry]
    summary: S1SessionSummary | None = None


class S1SessionMetrics(_Camel):
    """The session totals S1's ``onSessionEnd(sessionId, metrics)`` receives."""

    duration_seconds: float
    total_turns: int
    interruptions_count: int


class S1EndResponse(_Camel):
    """S1's ``POST /api/voice/{id}/end``."""

    success: Literal[True] = True
    session_id: str
    status: SessionStatus
    metrics: S1SessionMetrics


class VoiceConfig(BaseModel):
    """S2's per-chatbot voice configuration (``/api/v1/voice/config/{chatbot_id}``), plus
    Parley's provider and conversation choices; the defaults of every session of that
    chatbot (a session's own options win)."""

    model_config = ConfigDict(extra="forbid")

    tts_voice: Text | None = Field(default=None, max_length=200)
    tts_speed: float = Field(default=1.0, ge=0.5, le=2.0, strict=True)
    tts_pitch: float = Field(default=0.0, ge=-2.0, le=2.0, strict=True)
    stt_language: Text | None = Field(
        default=None,
        min_length=2,
        max_length=16,
        json_schema_extra={"pattern": LANGUAGE_TAG_PATTERN},
    )
    audio_format: AudioFormat = "webm"
    stt_provider: SttProvider | None = None
    llm_provider: LlmProvider | None = None
    tts_provider: TtsProvider | None = None
    response_style: ResponseStyle | None = None
    interrupt_sensitivity: InterruptSensitivity | None = None
    system_prompt: Text | None = Field(default=None, max_length=8000)
    use_rag: bool | None = Field(
        default=None, strict=True, description="sessions answer from the chatbot's documents"
    )

    # The sessions' language: one of the nine, as SessionConfig.language.
    _supported_language = field_validator("stt_language")(check_language)

    def session_defaults(self) -> dict[str, Any]:
        """The session options this configuration sets, by SessionConfig field name."""
        options = {
            "voice": self.tts_voice,
            "speed": self.tts_speed,
            "language": self.stt_language,
            "stt_provider": self.stt_provider,
            "llm_provider": self.llm_provider,
            "tts_provider": self.tts_provider,
            "response_style": self.response_style,
            "interrupt_sensitivity": self.interrupt_sensitivity,
            "system_prompt": self.system_prompt,
            "use_rag": self.use_rag,
        }
        return {name: value for name, value in options.items() if value is not None}


class VoiceConfigView(VoiceConfig):
    """A chatbot's voice configuration as returned (defaults when none was stored)."""

    model_config = ConfigDict(extra="forbid")

    chatbot_id: str
    updated_at: datetime | None = None


# -- S2's health and statistics (/api/v1/voice/health, /api/v1/ws/voice/...) -----------------
CheckResult = Literal["ok", "fail"]


class VoiceServiceHealth(BaseModel):
    """One streaming service (stt, llm, tts) in S2's voice health."""

    status: CheckResult = Field(description="ok when at least one worker sent a heartbeat lately")
    workers: int = Field(description="Live workers, from their heartbeats")
    providers: list[ProviderStatus] | None = Field(
        default=None,
        description="Each provider and whether it can serve now; null when no worker answered",
    )


class VoiceHealthView(BaseModel):
    """``GET /api/v1/voice/health``: can this deployment hold a voice conversation now?"""

    status: Literal["ok", "degraded"]
    service: Literal["voice"] = "voice"
    checks: dict[str, CheckResult] = Field(
        description="nats, postgres, and each streaming service (a live worker or not)"
    )
    stt: VoiceServiceHealth
    llm: VoiceServiceHealth
    tts: VoiceServiceHealth
    timestamp: datetime


class VoiceSocketHealthView(BaseModel):
    """``GET /api/v1/ws/voice/health``: the WebSocket side of this gateway."""

    status: Literal["ok", "degraded"]
    service: Literal["voice-websocket"] = "voice-websocket"
    checks: dict[str, CheckResult] = Field(description="nats and postgres, which calls need")
    gateway: str = Field(description="This gateway's id")
    active_connections: int = Field(description="WebSockets open on this gateway now")
    timestamp: datetime


class WorkerLoad(BaseModel):
    """A live worker of a streaming service, from its last heartbeat."""

    worker_id: str
    sessions: int = Field(description="Sessions it holds now: its load")
    last_seen_s: float = Field(description="Seconds since its last heartbeat")


class ServiceLoad(BaseModel):
    """The live workers of one streaming service and the sessions they hold."""

    workers: list[WorkerLoad]
    sessions: int = Field(description="Sessions held by all its live workers")


class SessionStatsView(BaseModel):
    """``GET /api/v1/ws/voice/sessions/stats`` (admin): sessions and load."""

    active_sessions: int = Field(description="Active sessions in the database (every gateway)")
    websocket_connections: int = Field(description="WebSockets open on this gateway")
    gateway: str = Field(description="This gateway's id")
    idle_timeout_s: float = Field(description="Sessions idle this long are ended (0: never)")
    stt: ServiceLoad
    llm: ServiceLoad
    tts: ServiceLoad
    timestamp: datetime


class UsageLine(BaseModel):
    """Work one provider (and model) did in one unit, with its estimated cost."""

    service: str = Field(description="The stage that used the provider: stt, llm, tts, clone")
    provider: str
    model: str | None = Field(description="The model billed; null when it was not reported")
    unit: str = Field(description="audio_seconds, characters, input_tokens or output_tokens")
    quantity: float
    cost_usd: float = Field(description="Estimated from the price table, in US dollars")


class TurnMetrics(BaseModel):
    """One turn: how long each stage took, what it used and what that cost."""

    turn_id: int
    latency: LatencyStages = Field(description="Per stage, in milliseconds; null: not measured")
    usage: list[UsageLine]
    cost_usd: float


class SessionMetricsView(BaseModel):
    """``GET /api/v1/sessions/{id}/metrics``: latency, usage and cost per turn and in all."""

    session_id: str
    turns: list[TurnMetrics] = Field(
        description="Turns in order; speech-to-text usage is matched to the spoken turns in"
        " the order both happened"
    )
    usage: list[UsageLine] = Field(
        description="The whole session's usage, including any no turn could be matched to"
    )
    total_cost_usd: float
    price_versions: list[str] = Field(description="The price table versions that priced it")


class UsageGroup(BaseModel):
    """Usage and cost of one provider (``group_by=provider``) or one UTC day (``day``)."""

    service: str | None = Field(default=None, description="With group_by=provider")
    provider: str | None = Field(default=None, description="With group_by=provider")
    day: date | None = Field(default=None, description="With group_by=day (UTC)")
    sessions: int = Field(description="Sessions with usage in this group")
    audio_seconds: float = Field(description="Audio transcribed")
    characters: float = Field(description="Characters synthesized")
    input_tokens: float
    output_tokens: float
    cost_usd: float


class UsageReportView(BaseModel):
    """``GET /api/v1/usage``: one user's usage and cost in ``[from, to)``."""

    user_id: str | None = Field(description="Whose usage; null: every user (authentication off)")
    from_: datetime = Field(serialization_alias="from")
    to: datetime
    group_by: Literal["provider", "day"]
    groups: list[UsageGroup]
    total_cost_usd: float
    price_versions: list[str] = Field(description="The price table versions that priced it")


class VoicesView(BaseModel):
    """The voices of one provider."""

    provider: str
    voices: list[VoiceEntry]


class ProvidersView(BaseModel):
    """Every provider a session may name, per capability, with whether the running workers
    can serve it and, if not, why (``no API key: set …``, ``not installed: …``)."""

    stt: list[ProviderStatus]
    llm: list[ProviderStatus]
    tts: list[ProviderStatus]


class CustomVoiceView(BaseModel):
    """A voice cloned from a user's samples (``/api/v1/voices/custom``). Sessions name it by
    ``id`` (``voice``) with ``tts_provider`` = its ``provider``, once it is ``ready``."""

    id: str
    user_id: str
    name: str
    description: str | None
    provider: CloneProvider
    status: CustomVoiceStatus
    error: str | None = Field(description="Why it failed (the provider's reason), when failed")
    sample_count: int = Field(description="Samples it was cloned from")
    total_duration_seconds: float = Field(description="Seconds of audio in those samples")
    warnings: list[str] = Field(
        description="What was wrong with the samples (skipped ones, fewer or shorter than S1's"
        " recommended 10+ samples of 1-2 minutes)"
    )
    created_at: datetime
    updated_at: datetime


class CustomVoicesView(BaseModel):
    """The caller's cloned voices, newest first."""

    voices: list[CustomVoiceView]


class S1CustomVoice(CustomVoiceView):
    """A cloned voice in S1's camelCase."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class S1CloneResponse(_Camel):
    """``POST /api/voice/clone``: the voice, ``processing`` while its provider clones it,
    then ``ready`` (or ``failed``) at ``/api/v1/voices/custom/{id}``."""

    success: Literal[True] = True
    voice: S1CustomVoice
