"""Per-chatbot voice configurations in ``voice_configs`` (S2's ``/voice/config``)."""

from __future__ import annotations

from typing import Any

import asyncpg

from parley_common.contracts.rest import VoiceConfig, VoiceConfigView

_FIELDS = tuple(VoiceConfig.model_fields)


class VoiceConfigStore:
    """Reads and writes chatbots' voice configurations."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def get(self, chatbot_id: str) -> VoiceConfigView | None:
        """The stored configuration of ``chatbot_id``, if any."""
        row = await self.pool.fetchrow(
            f"SELECT chatbot_id, updated_at, {', '.join(_FIELDS)} FROM voice_configs"
            " WHERE chatbot_id = $1",
            chatbot_id,
        )
        if row is None:
            return None
        values: dict[str, Any] = {k: v for k, v in dict(row).items() if v is not None}
        return VoiceConfigView.model_validate(values)

    async def put(
        self, chatbot_id: str, user_id: str | None, config: VoiceConfig
    ) -> VoiceConfigView:
        """Store ``config`` as the whole configuration of ``chatbot_id``."""
        values = config.model_dump(mode="json")
        columns = ", ".join(_FIELDS)
        params = ", ".join(f"${i}" for i in range(3, 3 + len(_FIELDS)))
        updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in _FIELDS)
        await self.pool.execute(
            f"""INSERT INTO voice_configs (chatbot_id, user_id, {columns})
                VALUES ($1, $2, {params})
                ON CONFLICT (chatbot_id) DO UPDATE SET {updates}, updated_at = now()""",
            chatbot_id,
            user_id,
            *(values[name] for name in _FIELDS),
        )
        stored = await self.get(chatbot_id)
        assert stored is not None
        return stored
