"""A session's toolbox from PostgreSQL: the enabled tools of the session's own chatbot, none
for a session without a chatbot, and never another chatbot's."""

from __future__ import annotations

import uuid

import asyncpg

from parley_common.contracts.session import SessionConfig
from parley_common.testing import session_row
from parley_llm.tools import load_toolbox


async def _tool(
    pool: asyncpg.Pool, chatbot: str, name: str, kind: str = "webhook", enabled: bool = True
) -> None:
    await pool.execute(
        """INSERT INTO chatbot_tools (id, chatbot_id, name, kind, description, url, enabled)
           VALUES ($1, $2, $3, $4, 'A tool.', $5, $6)""",
        uuid.uuid4(),
        chatbot,
        name,
        kind,
        "http://127.0.0.1:9/tool" if kind == "webhook" else None,
        enabled,
    )


async def _session(pool: asyncpg.Pool, chatbot: str | None) -> str:
    sid = await session_row(pool, SessionConfig())
    await pool.execute(
        "UPDATE voice_sessions SET chatbot_id = $2 WHERE id = $1", uuid.UUID(sid), chatbot
    )
    return sid


async def test_a_session_gets_its_chatbots_enabled_tools_only(pool: asyncpg.Pool) -> None:
    mine, other = f"bot-{uuid.uuid4().hex[:8]}", f"bot-{uuid.uuid4().hex[:8]}"
    await _tool(pool, mine, "lookup_order")
    await _tool(pool, mine, "current_time", kind="builtin")
    await _tool(pool, mine, "retired", enabled=False)
    await _tool(pool, other, "other_bots_tool")

    box = await load_toolbox(pool, await _session(pool, mine))
    alone = await load_toolbox(pool, await _session(pool, None))

    assert [s.name for s in box.specs] == ["current_time", "lookup_order"]
    assert box.specs[1].description == "A tool."
    assert box.specs[1].parameters == {"type": "object", "properties": {}}
    assert alone.specs == []
