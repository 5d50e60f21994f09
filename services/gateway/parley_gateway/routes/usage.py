"""``/api/v1/sessions/{id}/metrics`` and ``/api/v1/usage``: what calls cost and how fast
each stage was, from what the analytics service recorded."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from parley_common.contracts.rest import SessionMetricsView, UsageReportView
from parley_common.contracts.session import Text
from parley_common.errors import BadInputError
from parley_gateway.auth import CurrentUser, acting_user
from parley_gateway.routes.deps import GatewayDep
from parley_gateway.routes.sessions_v1 import load_session
from parley_gateway.sessions.usage_store import GroupBy, UsageStore

router = APIRouter(prefix="/api/v1", tags=["usage"])

# S1's usage query looks 30 days back; so does a report that names no start.
DEFAULT_WINDOW = timedelta(days=30)
_EARLIEST = datetime.min.replace(tzinfo=UTC)

# A date, or an RFC 3339 date-time (with its offset): what the schema says, and nothing
# looser (no Unix timestamps, no times without an offset).
TIME_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([Tt][0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2}))?$"
)
_TIME = re.compile(TIME_PATTERN)


def parse_time(raw: str, name: str) -> datetime:
    """``raw`` as a UTC datetime (a date is its midnight, UTC); a 422 saying what is wrong
    otherwise."""
    if not _TIME.match(raw):
        raise BadInputError(
            f"{name} must be a date (2026-12-01) or a date-time with its offset"
            " (2026-12-01T09:30:00Z)",
            code="bad_date",
        )
    try:
        value = datetime.fromisoformat(raw.upper())
    except ValueError as exc:
        raise BadInputError(f"{name} is not a real date or time: {exc}", code="bad_date") from None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise BadInputError(
            f"{name} is outside the years 1 to 9999 once converted to UTC", code="bad_range"
        ) from None


def report_range(start: str | None, end: str | None) -> tuple[datetime, datetime]:
    """The ``[from, to)`` of a report: ``to`` defaults to now, ``from`` to 30 days before
    ``to``; ``from`` after ``to`` is refused."""
    stop = parse_time(end, "to") if end is not None else datetime.now(UTC)
    if start is not None:
        begin = parse_time(start, "from")
    else:
        begin = stop - DEFAULT_WINDOW if stop - _EARLIEST > DEFAULT_WINDOW else _EARLIEST
    if begin > stop:
        raise BadInputError(
            f"from ({begin.isoformat()}) is after to ({stop.isoformat()})", code="bad_range"
        )
    return begin, stop


@router.get("/sessions/{session_id}/metrics", response_model=SessionMetricsView)
async def session_metrics(
    gateway: GatewayDep, principal: CurrentUser, session_id: str
) -> SessionMetricsView:
    """Per turn: each stage's latency, the usage of each provider and its cost; and the
    session's usage and total cost (the caller's session only)."""
    record = await load_session(gateway, session_id, principal)
    return await UsageStore(gateway.pool).session_metrics(record.id)


@router.get("/usage", response_model=UsageReportView)
async def usage_report(
    gateway: GatewayDep,
    principal: CurrentUser,
    start: Annotated[
        str | None,
        Query(
            alias="from",
            description="Start (inclusive): a date (its midnight, UTC) or an RFC 3339"
            " date-time. Default: 30 days before `to`",
            json_schema_extra={"pattern": TIME_PATTERN},
        ),
    ] = None,
    end: Annotated[
        str | None,
        Query(
            alias="to",
            description="End (exclusive), like `from`. Default: now",
            json_schema_extra={"pattern": TIME_PATTERN},
        ),
    ] = None,
    group_by: Annotated[
        GroupBy, Query(description="One group per provider (and stage), or per UTC day")
    ] = "provider",
    user_id: Annotated[
        Text | None,
        Query(
            min_length=1,
            max_length=200,
            description="Admins only: whose usage (default: the caller's)",
        ),
    ] = None,
) -> UsageReportView:
    """The caller's usage and estimated cost in ``[from, to)``, grouped by provider or day;
    an admin may name any user."""
    begin, stop = report_range(start, end)
    user = acting_user(principal, user_id)
    groups, versions = await UsageStore(gateway.pool).report(user, begin, stop, group_by)
    return UsageReportView(
        user_id=user,
        from_=begin,
        to=stop,
        group_by=group_by,
        groups=groups,
        total_cost_usd=sum((g.cost_usd for g in groups), 0.0),
        price_versions=versions,
    )
