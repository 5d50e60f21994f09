"""Conversation summaries: a title and a short summary of an ended session, written by the
session's own LLM on a dialogue worker and stored on the session's row."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from parley_common.contracts import subjects

#: The dialogue service's queue group answers summary requests on this subject.
SUMMARY_SUBJECT = subjects.query("llm", "summary")


class SummaryStatus(StrEnum):
    """Where a session's summary is; no status at all means nothing to summarise yet."""

    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


class SummaryRequest(BaseModel):
    """Summarise this session's stored conversation if it has ended (a worker releasing a
    session that only moves to another worker asks too, and is ignored). ``force``: also when
    it is still active (a client asked to regenerate)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["summary.request"] = "summary.request"
    session_id: str
    force: bool = False


class SummaryDone(BaseModel):
    """The answer to a request that wanted one: the status stored, None when there was
    nothing to summarise (no turns) or to do (the session is active and nothing forced)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["summary.done"] = "summary.done"
    status: SummaryStatus | None = None


class SessionSummary(BaseModel):
    """A session's summary as ``/api/v1`` returns it (on the session and its transcript);
    absent while the session has nothing to summarise."""

    status: SummaryStatus
    title: str | None = None
    text: str | None = None
    generated_at: datetime | None = None


class S1SessionSummary(SessionSummary):
    """The same in S1's camelCase (``generatedAt``)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)
