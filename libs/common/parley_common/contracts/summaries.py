"""Conversation summaries: a title and a short summary of an ended session, written by the
session's own LLM on a dialogue worker and stored on the session's row."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

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
