"""A session's summary as the gateway reads it from its row, and a regeneration asked of
the dialogue workers (who write every summary: ``parley_llm.summary``)."""

from __future__ import annotations

import asyncpg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from parley_common.bus import Bus, MessageMeta
from parley_common.contracts.summaries import (
    SUMMARY_SUBJECT,
    SessionSummary,
    SummaryDone,
    SummaryRequest,
    SummaryStatus,
)
from parley_common.errors import ParleyTimeoutError, ServiceUnavailableError

# A summary is one short generation; the local model on a busy CPU takes the longest.
REGENERATE_TIMEOUT_S = 90.0


def summary_of(row: asyncpg.Record) -> SessionSummary | None:
    """The summary columns of a ``voice_sessions`` row; None before there is any."""
    status = row.get("summary_status")
    if status is None:
        return None
    return SessionSummary(
        status=SummaryStatus(status),
        title=row["title"],
        text=row["summary"],
        generated_at=row["summary_generated_at"],
    )


async def regenerate(
    bus: Bus, session_id: str, timeout_s: float = REGENERATE_TIMEOUT_S
) -> SummaryStatus | None:
    """Have a dialogue worker write the session's summary again now, ended or not; returns
    the status it stored (None: the session has no turns to summarise)."""
    request = SummaryRequest(session_id=session_id, force=True)
    try:
        reply = await bus.request(
            SUMMARY_SUBJECT, request, MessageMeta(session_id=session_id), timeout=timeout_s
        )
    except NoRespondersError as exc:
        raise ServiceUnavailableError("no llm worker is available to summarise") from exc
    except NatsTimeoutError as exc:
        raise ParleyTimeoutError("the summary took too long; try again later") from exc
    return SummaryDone.model_validate_json(reply.data).status
