"""Durable facts on JetStream (``parley.events.<name>``), consumed by analytics and storage.

These must not be lost: they are published with an ack and read by durable consumers, so a
consumer that was down catches up when it returns.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from parley_common.contracts.bus import LatencyStages
from parley_common.contracts.session import SessionConfig


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    session_id: str
    at: datetime


class SessionStarted(_Event):
    """A session was created."""

    type: Literal["session.started"] = "session.started"
    user_id: str
    chatbot_id: str | None
    config: SessionConfig


class SessionEnded(_Event):
    """A session ended, with its totals."""

    type: Literal["session.ended"] = "session.ended"
    user_id: str
    config: SessionConfig
    duration_seconds: float
    total_turns: int
    interruptions_count: int


class UsageRecorded(_Event):
    """Billable work done by a provider: characters, audio seconds or tokens."""

    type: Literal["usage.recorded"] = "usage.recorded"
    service: Literal["stt", "llm", "tts", "clone"]
    provider: str
    quantity: float
    unit: Literal["audio_seconds", "characters", "input_tokens", "output_tokens"]
    model: str | None = None


class ErrorRecorded(_Event):
    """A failure worth keeping (provider errors, crashes of a session's stream)."""

    type: Literal["error.recorded"] = "error.recorded"
    service: str
    code: str
    message: str


class ProviderSwitched(_Event):
    """The rest of a turn moved to the next provider of the stage's fallback chain."""

    type: Literal["provider.switched"] = "provider.switched"
    service: str
    provider: str
    fallback: str
    reason: str  # the error code, or deadline_exceeded


class LatencyRecorded(_Event):
    """Latency of one turn's stages in milliseconds."""

    type: Literal["latency.recorded"] = "latency.recorded"
    turn_id: int
    stages: LatencyStages


DurableEvent = Annotated[
    SessionStarted
    | SessionEnded
    | UsageRecorded
    | ErrorRecorded
    | LatencyRecorded
    | ProviderSwitched,
    Field(discriminator="type"),
]
event_adapter: TypeAdapter[DurableEvent] = TypeAdapter(DurableEvent)
