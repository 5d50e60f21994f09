"""The clone service's writes to ``custom_voices`` (and ``custom_voice_samples`` when samples
are kept). The gateway reads the same rows to list them; only this service changes them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from parley_clone.providers.base import Sample
from parley_common.contracts.jobs import (
    CloneJobParams,
    CloneProvider,
    CustomVoiceStatus,
    custom_voice_uuid,
)

__all__ = ["VoiceRow", "VoiceRows"]


@dataclass(frozen=True, slots=True)
class VoiceRow:
    """What the service needs of a voice to delete or resolve it."""

    id: str
    user_id: str
    provider: CloneProvider
    provider_voice_id: str | None
    status: str  # a CustomVoiceStatus, or a status S1 wrote ("pending", "deleted")


class VoiceRows:
    """Custom voice rows on ``pool``."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def insert(self, voice_id: str, params: CloneJobParams) -> None:
        """A new voice, ``processing``."""
        await self.pool.execute(
            """INSERT INTO custom_voices (id, user_id, name, description, provider, status,
                   sample_count, total_duration_seconds, warnings)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
            uuid.UUID(voice_id),
            params.owner,
            params.name,
            params.description,
            params.provider.value,
            CustomVoiceStatus.PROCESSING.value,
            len(params.samples),
            params.total_duration_s,
            list(params.warnings),  # the pool's codec writes it as JSON
        )

    async def keep_samples(
        self, voice_id: str, samples: Sequence[Sample], durations: Sequence[float]
    ) -> None:
        """Store the converted samples of a voice (only with ``CLONE_KEEP_SAMPLES``)."""
        await self.pool.executemany(
            """INSERT INTO custom_voice_samples
                   (voice_id, ordinal, filename, mime_type, duration_seconds, audio)
               VALUES ($1, $2, $3, $4, $5, $6)""",
            [
                (uuid.UUID(voice_id), i, s.filename, s.mime_type, d, s.data)
                for i, (s, d) in enumerate(zip(samples, durations, strict=True))
            ],
        )

    async def finish(self, voice_id: str, provider_voice_id: str) -> bool:
        """The provider made the voice: ``ready``. False when the row is no longer
        ``processing`` (swept as interrupted meanwhile): the caller then removes the
        provider's voice, which no row names."""
        updated = await self.pool.fetchval(
            """UPDATE custom_voices SET status = $2, provider_voice_id = $3, error = NULL,
                   updated_at = now()
               WHERE id = $1 AND status = $4 RETURNING id""",
            uuid.UUID(voice_id),
            CustomVoiceStatus.READY.value,
            provider_voice_id,
            CustomVoiceStatus.PROCESSING.value,
        )
        return updated is not None

    async def fail(self, voice_id: str, reason: str) -> None:
        """The clone failed: ``failed`` with the reason a user may read."""
        await self.pool.execute(
            """UPDATE custom_voices SET status = $2, error = $3, updated_at = now()
               WHERE id = $1 AND status = $4""",
            uuid.UUID(voice_id),
            CustomVoiceStatus.FAILED.value,
            reason,
            CustomVoiceStatus.PROCESSING.value,
        )

    async def get(self, voice_id: str) -> VoiceRow | None:
        """The voice ``voice_id`` (not a UUID: none)."""
        key = custom_voice_uuid(voice_id)
        if key is None:
            return None
        row = await self.pool.fetchrow(
            """SELECT id, user_id, provider, provider_voice_id, status
               FROM custom_voices WHERE id = $1""",
            key,
        )
        if row is None or row["provider"] not in {p.value for p in CloneProvider}:
            return None
        return VoiceRow(
            id=str(row["id"]),
            user_id=row["user_id"],
            provider=CloneProvider(row["provider"]),
            provider_voice_id=row["provider_voice_id"],
            status=row["status"],
        )

    async def delete(self, voice_id: str) -> None:
        """Remove the voice (and any kept samples)."""
        await self.pool.execute("DELETE FROM custom_voices WHERE id = $1", uuid.UUID(voice_id))

    async def fail_stale(self, older_than_s: float, reason: str) -> int:
        """Mark failed the voices left ``processing`` for ``older_than_s`` (their worker
        stopped mid-clone); returns how many."""
        rows = await self.pool.fetch(
            """UPDATE custom_voices SET status = $1, error = $2, updated_at = now()
               WHERE status = $3 AND updated_at < now() - make_interval(secs => $4)
               RETURNING id""",
            CustomVoiceStatus.FAILED.value,
            reason,
            CustomVoiceStatus.PROCESSING.value,
            older_than_s,
        )
        return len(rows)
