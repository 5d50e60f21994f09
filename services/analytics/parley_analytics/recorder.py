"""Writes durable events into the analytics tables. Every write is idempotent, because
JetStream delivers at least once."""

from __future__ import annotations

import logging
import uuid

import asyncpg
from prometheus_client import Counter

from parley_analytics.pricing import DEFAULT_PRICES, PriceTable
from parley_common.bus import MessageMeta
from parley_common.contracts.events import (
    DurableEvent,
    ErrorRecorded,
    LatencyRecorded,
    ProviderSwitched,
    SessionEnded,
    SessionStarted,
    UsageRecorded,
)

log = logging.getLogger(__name__)

COST_USD = Counter(
    "parley_cost_usd_total",
    "Estimated provider cost of the usage recorded, in US dollars (kind: the unit billed)",
    ["service", "provider", "kind"],
)

# A session's usage totals in its voice_analytics row, recomputed from its usage rows: a
# replay writes the same figures, and usage that arrives after the session ended still counts.
_USAGE_TOTALS = """UPDATE voice_analytics a SET
        characters_synthesized = t.characters, audio_seconds_processed = t.audio_seconds,
        llm_input_tokens = t.input_tokens, llm_output_tokens = t.output_tokens,
        estimated_cost_usd = t.cost, price_version = t.versions
    FROM (SELECT
            COALESCE(sum(quantity) FILTER (WHERE service = 'tts' AND unit = 'characters'), 0)
                AS characters,
            COALESCE(sum(quantity) FILTER (WHERE unit = 'audio_seconds'), 0) AS audio_seconds,
            COALESCE(sum(quantity) FILTER (WHERE unit = 'input_tokens'), 0) AS input_tokens,
            COALESCE(sum(quantity) FILTER (WHERE unit = 'output_tokens'), 0) AS output_tokens,
            COALESCE(sum(cost_usd), 0) AS cost,
            string_agg(DISTINCT price_version, ',' ORDER BY price_version) AS versions
          FROM voice_usage WHERE session_id = $1) t
    WHERE a.session_id = $1"""


# One row per session; its usage totals are left to _USAGE_TOTALS.
_SUMMARY = """INSERT INTO voice_analytics (session_id, user_id, chatbot_id, stt_provider,
           llm_provider, tts_provider, duration_seconds, total_turns,
           interruptions_count, characters_transcribed,
           avg_stt_latency_ms, avg_llm_first_token_ms, avg_tts_first_byte_ms,
           avg_voice_to_voice_ms, avg_interrupt_latency_ms, avg_confidence,
           recorded_at)
       SELECT s.id, s.user_id, s.chatbot_id, s.stt_provider, s.llm_provider,
           s.tts_provider, $2, $3, $4,
           COALESCE((SELECT sum(length(text)) FROM voice_transcripts
                     WHERE session_id = s.id AND role = 'user'), 0),
           l.stt, l.llm, l.tts, l.v2v, l.intr,
           (SELECT avg(confidence) FROM voice_transcripts
            WHERE session_id = s.id AND role = 'user'),
           $5
       FROM voice_sessions s,
           LATERAL (SELECT avg(stt_final_ms) stt, avg(llm_first_token_ms) llm,
                           avg(tts_first_byte_ms) tts, avg(voice_to_voice_ms) v2v,
                           avg(interrupt_ms) intr
                    FROM voice_turn_latency WHERE session_id = s.id) l
       WHERE s.id = $1
       ON CONFLICT (session_id) DO UPDATE SET
           duration_seconds = EXCLUDED.duration_seconds,
           total_turns = EXCLUDED.total_turns,
           interruptions_count = EXCLUDED.interruptions_count,
           characters_transcribed = EXCLUDED.characters_transcribed,
           avg_stt_latency_ms = EXCLUDED.avg_stt_latency_ms,
           avg_llm_first_token_ms = EXCLUDED.avg_llm_first_token_ms,
           avg_tts_first_byte_ms = EXCLUDED.avg_tts_first_byte_ms,
           avg_voice_to_voice_ms = EXCLUDED.avg_voice_to_voice_ms,
           avg_interrupt_latency_ms = EXCLUDED.avg_interrupt_latency_ms,
           avg_confidence = EXCLUDED.avg_confidence,
           recorded_at = EXCLUDED.recorded_at"""


class Recorder:
    """One method per event type, dispatched by ``record``. Usage is priced by ``prices``."""

    def __init__(self, pool: asyncpg.Pool, prices: PriceTable = DEFAULT_PRICES) -> None:
        self.pool = pool
        self.prices = prices
        self._unpriced: set[tuple[str, str, str | None, str]] = set()

    async def record(
        self, event: DurableEvent, event_id: str, meta: MessageMeta | None = None
    ) -> None:
        """Store ``event``; ``event_id`` (``consumer.event_id``) makes redelivery harmless.
        ``meta`` (the message's headers) says which turn usage belongs to."""
        match event:
            case UsageRecorded():
                await self._usage(event, event_id, meta.turn_id if meta else 0)
            case ErrorRecorded():
                await self._error(event, event_id)
            case ProviderSwitched():
                # Kept with the errors: a switch is a provider failing a user, answered.
                switched = ErrorRecorded(
                    session_id=event.session_id,
                    at=event.at,
                    service=event.service,
                    code="provider_fallback",
                    message=f"{event.provider} -> {event.fallback}: {event.reason}",
                )
                await self._error(switched, event_id)
            case LatencyRecorded():
                await self._latency(event)
            case SessionEnded():
                await self._session_summary(event)
            case SessionStarted():
                pass  # the gateway stores the session row itself

    async def _usage(self, event: UsageRecorded, event_id: str, turn_id: int) -> None:
        price = self.prices.price(event.service, event.provider, event.model, event.unit)
        if price is None:
            self._warn_unpriced(event)
        cost = self.prices.cost(price, event.quantity)
        sid = uuid.UUID(event.session_id)
        async with self.pool.acquire() as conn, conn.transaction():
            inserted = await conn.fetchval(
                """INSERT INTO voice_usage (session_id, user_id, chatbot_id, service, provider,
                       quantity, unit, cost_usd, event_id, recorded_at, model, turn_id,
                       price_version)
                   SELECT s.id, s.user_id, s.chatbot_id, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11
                   FROM voice_sessions s WHERE s.id = $1
                   ON CONFLICT (event_id) DO NOTHING
                   RETURNING true""",
                sid,
                event.service,
                event.provider,
                event.quantity,
                event.unit,
                cost,
                event_id,
                event.at,
                event.model,
                turn_id if turn_id > 0 else None,  # 0: the publisher did not know the turn
                self.prices.version,
            )
            if inserted:
                await conn.execute(_USAGE_TOTALS, sid)
        if inserted:  # counted once, after the row is committed; a replay inserts nothing
            COST_USD.labels(event.service, event.provider, event.unit).inc(float(cost))

    def _warn_unpriced(self, event: UsageRecorded) -> None:
        key = (event.service, event.provider, event.model, event.unit)
        if key not in self._unpriced:
            self._unpriced.add(key)
            log.warning(
                "no price for this usage in the price table; its cost is recorded as 0",
                extra={
                    "service": event.service,
                    "provider": event.provider,
                    "model": event.model,
                    "unit": event.unit,
                    "price_version": self.prices.version,
                },
            )

    async def _error(self, event: ErrorRecorded, event_id: str) -> None:
        await self.pool.execute(
            """INSERT INTO voice_errors (session_id, service, code, message, event_id,
                   occurred_at)
               VALUES ((SELECT id FROM voice_sessions WHERE id = $1), $2, $3, $4, $5, $6)
               ON CONFLICT (event_id) DO NOTHING""",
            uuid.UUID(event.session_id),
            event.service,
            event.code,
            event.message,
            event_id,
            event.at,
        )

    async def _latency(self, event: LatencyRecorded) -> None:
        await self.pool.execute(
            """INSERT INTO voice_turn_latency (session_id, turn_id, stt_final_ms,
                   llm_first_token_ms, tts_first_byte_ms, voice_to_voice_ms, interrupt_ms)
               SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (
                   SELECT 1 FROM voice_sessions WHERE id = $1)
               ON CONFLICT (session_id, turn_id) DO UPDATE SET
                   stt_final_ms = COALESCE(EXCLUDED.stt_final_ms, voice_turn_latency.stt_final_ms),
                   llm_first_token_ms = COALESCE(EXCLUDED.llm_first_token_ms,
                                                 voice_turn_latency.llm_first_token_ms),
                   tts_first_byte_ms = COALESCE(EXCLUDED.tts_first_byte_ms,
                                                voice_turn_latency.tts_first_byte_ms),
                   voice_to_voice_ms = COALESCE(EXCLUDED.voice_to_voice_ms,
                                                voice_turn_latency.voice_to_voice_ms),
                   interrupt_ms = COALESCE(EXCLUDED.interrupt_ms,
                                           voice_turn_latency.interrupt_ms)""",
            uuid.UUID(event.session_id),
            event.turn_id,
            event.stages.stt_final_ms,
            event.stages.llm_first_token_ms,
            event.stages.tts_first_byte_ms,
            event.stages.voice_to_voice_ms,
            event.stages.interrupt_ms,
        )

    async def _session_summary(self, event: SessionEnded) -> None:
        # One row per session, recomputed from the facts, so a replay yields the same row;
        # its usage totals come from _USAGE_TOTALS, which also runs as later usage arrives.
        sid = uuid.UUID(event.session_id)
        async with self.pool.acquire() as conn, conn.transaction():
            totals = (event.duration_seconds, event.total_turns, event.interruptions_count)
            await conn.execute(_SUMMARY, sid, *totals, event.at)
            await conn.execute(_USAGE_TOTALS, sid)
