"""Writes durable events into the analytics tables. Every write is idempotent, because
JetStream delivers at least once."""

from __future__ import annotations

import uuid

import asyncpg

from parley_analytics.pricing import estimate_cost
from parley_common.contracts.events import (
    DurableEvent,
    ErrorRecorded,
    LatencyRecorded,
    ProviderSwitched,
    SessionEnded,
    SessionStarted,
    UsageRecorded,
)


class Recorder:
    """One method per event type, dispatched by ``record``."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def record(self, event: DurableEvent, event_id: str) -> None:
        """Store ``event``; ``event_id`` (the stream sequence) makes redelivery harmless."""
        match event:
            case UsageRecorded():
                await self._usage(event, event_id)
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

    async def _usage(self, event: UsageRecorded, event_id: str) -> None:
        await self.pool.execute(
            """INSERT INTO voice_usage (session_id, user_id, chatbot_id, service, provider,
                   quantity, unit, cost_usd, event_id, recorded_at, model)
               SELECT s.id, s.user_id, s.chatbot_id, $2, $3, $4, $5, $6, $7, $8, $9
               FROM voice_sessions s WHERE s.id = $1
               ON CONFLICT (event_id) DO NOTHING""",
            uuid.UUID(event.session_id),
            event.service,
            event.provider,
            event.quantity,
            event.unit,
            estimate_cost(event.service, event.provider, event.unit, event.quantity),
            event_id,
            event.at,
            event.model,
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
        # One row per session, recomputed from the facts, so a replay yields the same row.
        await self.pool.execute(
            """INSERT INTO voice_analytics (session_id, user_id, chatbot_id, stt_provider,
                   llm_provider, tts_provider, duration_seconds, total_turns,
                   interruptions_count, characters_transcribed, characters_synthesized,
                   audio_seconds_processed, llm_input_tokens, llm_output_tokens,
                   avg_stt_latency_ms, avg_llm_first_token_ms, avg_tts_first_byte_ms,
                   avg_voice_to_voice_ms, avg_interrupt_latency_ms, avg_confidence,
                   estimated_cost_usd, recorded_at)
               SELECT s.id, s.user_id, s.chatbot_id, s.stt_provider, s.llm_provider,
                   s.tts_provider, $2, $3, $4,
                   COALESCE((SELECT sum(length(text)) FROM voice_transcripts
                             WHERE session_id = s.id AND role = 'user'), 0),
                   COALESCE((SELECT sum(quantity) FROM voice_usage WHERE session_id = s.id
                             AND service = 'tts' AND unit = 'characters'), 0),
                   COALESCE((SELECT sum(quantity) FROM voice_usage WHERE session_id = s.id
                             AND unit = 'audio_seconds'), 0),
                   COALESCE((SELECT sum(quantity) FROM voice_usage WHERE session_id = s.id
                             AND unit = 'input_tokens'), 0),
                   COALESCE((SELECT sum(quantity) FROM voice_usage WHERE session_id = s.id
                             AND unit = 'output_tokens'), 0),
                   l.stt, l.llm, l.tts, l.v2v, l.intr,
                   (SELECT avg(confidence) FROM voice_transcripts
                    WHERE session_id = s.id AND role = 'user'),
                   COALESCE((SELECT sum(cost_usd) FROM voice_usage WHERE session_id = s.id), 0),
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
                   characters_synthesized = EXCLUDED.characters_synthesized,
                   audio_seconds_processed = EXCLUDED.audio_seconds_processed,
                   llm_input_tokens = EXCLUDED.llm_input_tokens,
                   llm_output_tokens = EXCLUDED.llm_output_tokens,
                   avg_stt_latency_ms = EXCLUDED.avg_stt_latency_ms,
                   avg_llm_first_token_ms = EXCLUDED.avg_llm_first_token_ms,
                   avg_tts_first_byte_ms = EXCLUDED.avg_tts_first_byte_ms,
                   avg_voice_to_voice_ms = EXCLUDED.avg_voice_to_voice_ms,
                   avg_interrupt_latency_ms = EXCLUDED.avg_interrupt_latency_ms,
                   avg_confidence = EXCLUDED.avg_confidence,
                   estimated_cost_usd = EXCLUDED.estimated_cost_usd,
                   recorded_at = EXCLUDED.recorded_at""",
            uuid.UUID(event.session_id),
            event.duration_seconds,
            event.total_turns,
            event.interruptions_count,
            event.at,
        )
