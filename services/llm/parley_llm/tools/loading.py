"""A session's toolbox from PostgreSQL: the enabled tools of the session's chatbot
(``chatbot_tools``), built-ins and webhooks alike. A session without a chatbot, or whose
chatbot has no tools, gets an empty toolbox and its model is offered none."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import asyncpg

from parley_common.contracts.tools import Builtin
from parley_llm.providers.base import ToolSpec
from parley_llm.tools.base import Tool, ToolCallRecord, ToolEffect
from parley_llm.tools.builtin import KnowledgeSearch, builtin_tool
from parley_llm.tools.toolbox import Toolbox
from parley_llm.tools.webhook import WebhookTool

__all__ = ["load_toolbox"]

_TOOLS = """SELECT t.name, t.kind, t.description, t.parameters, t.url, t.timeout_s,
       t.secret_header, t.secret_value, t.timezone
   FROM voice_sessions s JOIN chatbot_tools t ON t.chatbot_id = s.chatbot_id
   WHERE s.id = $1 AND t.enabled ORDER BY t.name"""


def _tool(row: asyncpg.Record, knowledge: KnowledgeSearch | None) -> Tool:
    if row["kind"] == "builtin":
        return builtin_tool(Builtin(row["name"]), timezone=row["timezone"], knowledge=knowledge)
    return WebhookTool(
        ToolSpec(row["name"], row["description"], row["parameters"]),
        row["url"],
        row["timeout_s"],
        secret_header=row["secret_header"],
        secret_value=row["secret_value"],
    )


async def load_toolbox(
    pool: asyncpg.Pool,
    session_id: str,
    *,
    record: Callable[[ToolCallRecord], None] | None = None,
    on_effect: Callable[[ToolEffect, int], Awaitable[None]] | None = None,
    knowledge: KnowledgeSearch | None = None,
) -> Toolbox:
    """The toolbox of ``session_id``'s chatbot (see ``Toolbox`` for ``record`` and
    ``on_effect``; ``knowledge`` serves the ``knowledge_search`` built-in)."""
    rows = await pool.fetch(_TOOLS, uuid.UUID(session_id))
    return Toolbox([_tool(r, knowledge) for r in rows], record=record, on_effect=on_effect)
