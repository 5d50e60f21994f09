"""Who owns a chatbot. A chatbot has no table of its own: it belongs to the user who first
stored anything of it (its voice configuration, a document, a tool), and to everyone else it
does not exist. Every route about a chatbot asks here, so that owning it one way counts for
all of them."""

from __future__ import annotations

import asyncpg

from parley_common.errors import NotFoundError
from parley_common.tokens import Principal

# The voice configuration decides when there is one (S2's config is where a chatbot starts).
_OWNER = """
    SELECT user_id FROM (
        SELECT user_id, 1 AS rank FROM voice_configs WHERE chatbot_id = $1
        UNION ALL
        SELECT user_id, 2 FROM knowledge_documents WHERE chatbot_id = $1
        UNION ALL
        SELECT user_id, 3 FROM chatbot_tools WHERE chatbot_id = $1
    ) AS owners
    WHERE user_id IS NOT NULL
    ORDER BY rank
    LIMIT 1"""


def chatbot_not_found(chatbot_id: str) -> NotFoundError:
    """The one answer to a chatbot that is not the caller's (or does not exist)."""
    return NotFoundError(f"chatbot {chatbot_id} does not exist", code="chatbot_not_found")


async def owner_of(pool: asyncpg.Pool, chatbot_id: str) -> str | None:
    """The user who owns ``chatbot_id``; None while nobody does."""
    owner: str | None = await pool.fetchval(_OWNER, chatbot_id)
    return owner


async def check_owner(pool: asyncpg.Pool, chatbot_id: str, principal: Principal) -> str | None:
    """The chatbot's owner (None while nobody owns it); NotFoundError when it is another
    user's."""
    owner = await owner_of(pool, chatbot_id)
    if owner is not None and not principal.owns(owner):
        raise chatbot_not_found(chatbot_id)
    return owner
