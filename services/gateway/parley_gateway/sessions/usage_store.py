"""Usage, cost and latency as the analytics service stored them (``voice_usage``,
``voice_turn_latency``), read per session and per user."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from typing import Literal

import asyncpg

from parley_common.contracts.bus import LatencyStages
from parley_common.contracts.rest import SessionMetricsView, TurnMetrics, UsageGroup, UsageLine

GroupBy = Literal["provider", "day"]

# The STT bills an utterance before the dialogue numbers its turn, so its usage rows have
# no turn: the k-th of a session is the k-th spoken turn's (the turns whose latency has an
# STT stage, which the dialogue records for every spoken turn and no typed one).
_USAGE_BY_TURN = """
    WITH unnumbered AS (
        SELECT id, row_number() OVER (ORDER BY recorded_at, id) AS k
        FROM voice_usage WHERE session_id = $1 AND service = 'stt' AND turn_id IS NULL),
    spoken AS (
        SELECT turn_id, row_number() OVER (ORDER BY turn_id) AS k
        FROM voice_turn_latency WHERE session_id = $1 AND stt_final_ms IS NOT NULL)
    SELECT COALESCE(u.turn_id, s.turn_id) AS turn_id, u.service, u.provider, u.model, u.unit,
           sum(u.quantity) AS quantity, sum(u.cost_usd) AS cost_usd
    FROM voice_usage u
    LEFT JOIN unnumbered n ON n.id = u.id
    LEFT JOIN spoken s ON s.k = n.k
    WHERE u.session_id = $1
    GROUP BY 1, 2, 3, 4, 5
    ORDER BY 1 NULLS LAST, 2, 3, 4, 5"""

_SESSION_USAGE = """SELECT service, provider, model, unit, sum(quantity) AS quantity,
                            sum(cost_usd) AS cost_usd
                     FROM voice_usage WHERE session_id = $1
                     GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"""

_LATENCY = """SELECT turn_id, stt_final_ms, llm_first_token_ms, tts_first_byte_ms,
                     voice_to_voice_ms, interrupt_ms
              FROM voice_turn_latency WHERE session_id = $1 ORDER BY turn_id"""

# Each grouping is a fixed expression chosen by a Literal, never text from a request.
_GROUP_KEYS: dict[GroupBy, str] = {
    "provider": "service, provider",
    "day": "(recorded_at AT TIME ZONE 'UTC')::date AS day",
}
_GROUP_COLUMNS: dict[GroupBy, str] = {"provider": "service, provider", "day": "day"}

_RANGE = "($1::text IS NULL OR user_id = $1) AND recorded_at >= $2 AND recorded_at < $3"


def _report_sql(group_by: GroupBy) -> str:
    return f"""
        SELECT {_GROUP_KEYS[group_by]}, count(DISTINCT session_id) AS sessions,
            COALESCE(sum(quantity) FILTER (WHERE unit = 'audio_seconds'), 0) AS audio_seconds,
            COALESCE(sum(quantity) FILTER (WHERE unit = 'characters'), 0) AS characters,
            COALESCE(sum(quantity) FILTER (WHERE unit = 'input_tokens'), 0) AS input_tokens,
            COALESCE(sum(quantity) FILTER (WHERE unit = 'output_tokens'), 0) AS output_tokens,
            COALESCE(sum(cost_usd), 0) AS cost_usd
        FROM voice_usage WHERE {_RANGE}
        GROUP BY {_GROUP_COLUMNS[group_by]} ORDER BY {_GROUP_COLUMNS[group_by]}"""


def _line(row: asyncpg.Record) -> UsageLine:
    return UsageLine(
        service=row["service"],
        provider=row["provider"],
        model=row["model"],
        unit=row["unit"],
        quantity=row["quantity"],
        cost_usd=float(row["cost_usd"]),
    )


class UsageStore:
    """Read-only queries on what the analytics service recorded."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def session_metrics(self, session_id: str) -> SessionMetricsView:
        """Each turn's latency, usage and cost, and the session's totals."""
        sid = uuid.UUID(session_id)
        async with self.pool.acquire() as conn, conn.transaction(readonly=True):
            by_turn = await conn.fetch(_USAGE_BY_TURN, sid)
            usage = await conn.fetch(_SESSION_USAGE, sid)
            latency = {r["turn_id"]: r for r in await conn.fetch(_LATENCY, sid)}
            versions = await conn.fetch(
                "SELECT DISTINCT price_version FROM voice_usage"
                " WHERE session_id = $1 AND price_version IS NOT NULL ORDER BY 1",
                sid,
            )
        lines: dict[int, list[UsageLine]] = defaultdict(list)
        costs: dict[int, Decimal] = defaultdict(Decimal)
        for row in by_turn:
            if row["turn_id"] is not None:  # an STT row no spoken turn matched (yet)
                lines[row["turn_id"]].append(_line(row))
                costs[row["turn_id"]] += row["cost_usd"]
        turns = [
            TurnMetrics(
                turn_id=turn_id,
                latency=_stages(latency.get(turn_id)),
                usage=lines[turn_id],
                cost_usd=float(costs[turn_id]),
            )
            for turn_id in sorted(latency.keys() | lines.keys())
        ]
        return SessionMetricsView(
            session_id=session_id,
            turns=turns,
            usage=[_line(row) for row in usage],
            total_cost_usd=float(sum((row["cost_usd"] for row in usage), Decimal(0))),
            price_versions=[r["price_version"] for r in versions],
        )

    async def report(
        self, user_id: str | None, start: datetime, end: datetime, group_by: GroupBy
    ) -> tuple[list[UsageGroup], list[str]]:
        """Usage in ``[start, end)`` of ``user_id`` (None: every user), grouped, with the
        price table versions that priced it."""
        async with self.pool.acquire() as conn, conn.transaction(readonly=True):
            rows = await conn.fetch(_report_sql(group_by), user_id, start, end)
            versions = await conn.fetch(
                f"SELECT DISTINCT price_version FROM voice_usage WHERE {_RANGE}"
                " AND price_version IS NOT NULL ORDER BY 1",
                user_id,
                start,
                end,
            )
        groups = [
            UsageGroup(
                service=row.get("service"),
                provider=row.get("provider"),
                day=row.get("day"),
                sessions=row["sessions"],
                audio_seconds=row["audio_seconds"],
                characters=row["characters"],
                input_tokens=row["input_tokens"],
                output_tokens=row["output_tokens"],
                cost_usd=float(row["cost_usd"]),
            )
            for row in rows
        ]
        return groups, [r["price_version"] for r in versions]


def _stages(row: asyncpg.Record | None) -> LatencyStages:
    if row is None:
        return LatencyStages()
    return LatencyStages(
        stt_final_ms=row["stt_final_ms"],
        llm_first_token_ms=row["llm_first_token_ms"],
        tts_first_byte_ms=row["tts_first_byte_ms"],
        voice_to_voice_ms=row["voice_to_voice_ms"],
        interrupt_ms=row["interrupt_ms"],
    )
