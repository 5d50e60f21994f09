"""``/api/v1/sessions/{id}/metrics`` and ``/api/v1/usage``: what calls cost and how fast
each stage was, from what the analytics service recorded."""

from __future__ import annotations

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


def _utc(value: datetime, name: str) -> datetime:
    """``value`` in UTC (a time without an offset is taken as UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise BadInputError(
            f"{name} is outside the years 1 to 9999 once converted to UTC", code="bad_range"
        ) from None


def report_range(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """The ``[from, to)`` of a report: ``to`` defaults to now, ``from`` to 30 days before
    ``to``; ``from`` after ``to`` is refused."""
    stop = _utc(end, "to") if end is not None else datetime.now(UTC)
    if start is not None:
        begin = _utc(start, "from")
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
        datetime | None,
        Query(
            alias="from",
            description="Start (inclusive), ISO 8601 date or date-time; without an offset, UTC."
            " Default: 30 days before `to`",
        ),
    ] = None,
    end: Annotated[
        datetime | None,
        Query(alias="to", description="End (exclusive), like `from`. Default: now"),
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
