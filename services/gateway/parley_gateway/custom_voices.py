"""Users' cloned voices as the gateway reads them from ``custom_voices`` (the clone service
writes them): listed and shown to their owner only, offered in their provider's voices list,
and checked when a session names one.

A session names a custom voice by its id, a UUID (no provider's voice id is one). Another
user's voice is a 404, exactly like a voice that does not exist.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from parley_common.contracts.bus import VoiceEntry
from parley_common.contracts.jobs import CloneProvider, CustomVoiceStatus, custom_voice_uuid
from parley_common.contracts.rest import CustomVoiceView
from parley_common.contracts.session import SessionConfig
from parley_common.errors import BadInputError, ConflictError, NotFoundError
from parley_common.tokens import Principal

__all__ = ["CustomVoiceStore", "voice_not_found"]

_COLUMNS = """id, user_id, name, description, provider, status, error, sample_count,
              total_duration_seconds, warnings, created_at, updated_at"""
# Rows S1 wrote may be 'pending' (its clone was under way) or 'deleted' (soft-deleted).
_SHOWN = ("processing", "pending", "ready", "failed")
_PROVIDERS = [p.value for p in CloneProvider]


def voice_not_found(voice_id: object) -> NotFoundError:
    """The error for a custom voice the caller may not see (or that does not exist)."""
    return NotFoundError(f"no custom voice {voice_id}", code="voice_not_found")


def _view(row: asyncpg.Record) -> CustomVoiceView:
    status = row["status"]
    return CustomVoiceView(
        id=str(row["id"]),
        user_id=row["user_id"],
        name=row["name"],
        description=row["description"],
        provider=CloneProvider(row["provider"]),
        status=CustomVoiceStatus.PROCESSING if status == "pending" else CustomVoiceStatus(status),
        error=row["error"],
        sample_count=row["sample_count"],
        total_duration_seconds=row["total_duration_seconds"],
        warnings=[str(w) for w in row["warnings"] or []],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class CustomVoiceStore:
    """Reads of ``custom_voices`` on ``pool``, as ``principal`` may see them."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def visible(
        self, principal: Principal, *, provider: str | None = None, ready_only: bool = False
    ) -> list[CustomVoiceView]:
        """The caller's voices, newest first (without authentication: everyone's)."""
        conditions = ["status = ANY($1::text[])", "provider = ANY($2::text[])"]
        args: list[Any] = [["ready"] if ready_only else list(_SHOWN), _PROVIDERS]
        if provider is not None:
            args.append(provider)
            conditions.append(f"provider = ${len(args)}")
        if principal.user_id is not None:
            args.append(principal.user_id)
            conditions.append(f"user_id = ${len(args)}")
        rows = await self.pool.fetch(
            f"""SELECT {_COLUMNS} FROM custom_voices WHERE {" AND ".join(conditions)}
                ORDER BY created_at DESC, id""",
            *args,
        )
        return [_view(row) for row in rows]

    async def get(self, voice_id: str, principal: Principal) -> CustomVoiceView:
        """The voice ``voice_id`` if the caller may see it; NotFoundError otherwise."""
        key = custom_voice_uuid(voice_id)
        row = None
        if key is not None:
            row = await self.pool.fetchrow(
                f"""SELECT {_COLUMNS} FROM custom_voices
                    WHERE id = $1 AND status = ANY($2::text[]) AND provider = ANY($3::text[])""",
                key,
                list(_SHOWN),
                _PROVIDERS,
            )
        if row is None or not principal.owns(row["user_id"]):
            raise voice_not_found(voice_id)
        return _view(row)

    async def voice_entries(self, principal: Principal, provider: str) -> list[VoiceEntry]:
        """The caller's ready voices of ``provider``, as its voices list offers them."""
        voices = await self.visible(principal, provider=provider, ready_only=True)
        return [
            VoiceEntry(id=v.id, name=v.name, description=v.description, custom=True) for v in voices
        ]

    async def check_session_voice(self, config: SessionConfig, principal: Principal) -> None:
        """Refuse a session naming a custom voice the caller may not use: another user's or
        an unknown one (404), one still being cloned (409), a failed one or one of another
        provider (422). Any other voice is left to the TTS worker to check."""
        if custom_voice_uuid(config.voice) is None:
            return
        assert config.voice is not None
        voice = await self.get(config.voice, principal)
        if voice.provider.value != config.tts_provider.value:
            raise BadInputError(
                f"custom voice {voice.id} is a {voice.provider.value} voice: start the session"
                f" with tts_provider={voice.provider.value}",
                code="voice_provider_mismatch",
            )
        if voice.status is CustomVoiceStatus.PROCESSING:
            raise ConflictError(
                f"custom voice {voice.id} is still being cloned: try again once it is ready",
                code="voice_not_ready",
            )
        if voice.status is CustomVoiceStatus.FAILED:
            raise BadInputError(
                f"custom voice {voice.id} failed to clone: {voice.error or 'clone it again'}",
                code="voice_failed",
            )
