"""Per-chatbot voice configurations in ``voice_configs`` (S2's ``/voice/config``)."""

from __future__ import annotations

from typing import Any

import asyncpg

from parley_common.contracts.rest import VoiceConfig, VoiceConfigView
from parley_common.tokens import Principal
from parley_gateway.sessions.chatbots import chatbot_not_found, check_owner

_FIELDS = tuple(VoiceConfig.model_fields)


class VoiceConfigStore:
    """Reads and writes chatbots' voice configurations, each call checked against the
    chatbot's owner (``sessions.chatbots``)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def get(self, chatbot_id: str, principal: Principal) -> VoiceConfigView | None:
        """The stored configuration of ``chatbot_id``; None when none is stored, a
        NotFoundError when it is another user's."""
        row = await self.pool.fetchrow(
            f"SELECT chatbot_id, user_id, updated_at, {', '.join(_FIELDS)} FROM voice_configs"
            " WHERE chatbot_id = $1",
            chatbot_id,
        )
        if row is None:
            await check_owner(self.pool, chatbot_id, principal)  # its documents' or tools'
            return None
        values: dict[str, Any] = {k: v for k, v in dict(row).items() if v is not None}
        if not principal.owns(values.pop("user_id", None)):
            raise chatbot_not_found(chatbot_id)
        return VoiceConfigView.model_validate(values)

    async def put(
        self, chatbot_id: str, principal: Principal, config: VoiceConfig
    ) -> VoiceConfigView:
        """Store ``config`` as the whole configuration of ``chatbot_id`` (NotFoundError
        when the chatbot is another user's; the check and the write are one statement)."""
        await check_owner(self.pool, chatbot_id, principal)
        values = config.model_dump(mode="json")
        columns = ", ".join(_FIELDS)
        params = ", ".join(f"${i}" for i in range(4, 4 + len(_FIELDS)))
        updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in _FIELDS)
        stored = await self.pool.fetchval(
            f"""INSERT INTO voice_configs (chatbot_id, user_id, {columns})
                VALUES ($1, $2, {params})
                ON CONFLICT (chatbot_id) DO UPDATE SET {updates}, updated_at = now()
                WHERE $3 OR voice_configs.user_id IS NULL OR voice_configs.user_id = $2
                RETURNING chatbot_id""",
            chatbot_id,
            principal.user_id,
            principal.user_id is None or principal.admin,
            *(values[name] for name in _FIELDS),
        )
        if stored is None:
            raise chatbot_not_found(chatbot_id)
        view = await self.get(chatbot_id, principal)
        assert view is not None
        return view
