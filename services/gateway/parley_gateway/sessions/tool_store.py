"""A chatbot's tools in ``chatbot_tools`` (``/api/v1/chatbots/{chatbot_id}/tools``).

A chatbot belongs to whoever first stored its voice configuration, a document or a tool; to
anyone else it does not exist, nor do its tools. A webhook's host must be on the allow-list
when it is stored (and is checked again before each call). The secret is written, never
read back: views say only whether one is set.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from parley_common.contracts.tools import ToolBody, ToolView
from parley_common.errors import ConflictError, NotFoundError
from parley_common.tokens import Principal
from parley_common.tool_hosts import check_tool_url
from parley_gateway.sessions.chatbots import check_owner

__all__ = ["ToolStore"]

_VIEW = """id::text AS id, chatbot_id, name, kind, description, parameters, url, timeout_s,
       secret_header, secret_value IS NOT NULL AS has_secret, timezone, enabled,
       created_at, updated_at"""
_INSERT = f"""INSERT INTO chatbot_tools (id, chatbot_id, user_id, name, kind, description,
       parameters, url, timeout_s, secret_header, secret_value, timezone, enabled)
   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
   RETURNING {_VIEW}"""
# An omitted secret keeps the stored one; no header clears it.
_REPLACE = f"""UPDATE chatbot_tools SET name = $3, kind = $4, description = $5,
       parameters = $6, url = $7, timeout_s = $8, secret_header = $9,
       secret_value = CASE WHEN $9::text IS NULL THEN NULL ELSE COALESCE($10, secret_value) END,
       timezone = $11, enabled = $12, updated_at = now()
   WHERE chatbot_id = $1 AND id = $2
   RETURNING {_VIEW}"""


def _no_tool(tool_id: str) -> NotFoundError:
    return NotFoundError(f"tool {tool_id} does not exist", code="tool_not_found")


def _tool_id(tool_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(tool_id)
    except ValueError:
        raise _no_tool(tool_id) from None


def _values(body: ToolBody) -> tuple[Any, ...]:
    """The stored columns of ``body``, name to enabled (the secret's value in clear)."""
    if body.kind == "webhook" and body.url is not None:
        check_tool_url(body.url)
    secret = body.secret_value.get_secret_value() if body.secret_value is not None else None
    return (
        body.name,
        body.kind,
        body.description,
        body.parameters,
        body.url,
        body.timeout_s,
        body.secret_header,
        secret,
        body.timezone,
        body.enabled,
    )


class ToolStore:
    """Reads and writes chatbots' tools, each call checked against the chatbot's owner."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def _owner(self, chatbot_id: str, principal: Principal) -> str | None:
        """The chatbot's owner, the caller when nobody owns it yet; NotFoundError when it is
        another user's."""
        owner = await check_owner(self.pool, chatbot_id, principal)
        return owner or principal.user_id

    async def list(self, chatbot_id: str, principal: Principal) -> list[ToolView]:
        """The chatbot's tools by name."""
        await self._owner(chatbot_id, principal)
        rows = await self.pool.fetch(
            f"SELECT {_VIEW} FROM chatbot_tools WHERE chatbot_id = $1 ORDER BY name", chatbot_id
        )
        return [ToolView.model_validate(dict(r)) for r in rows]

    async def get(self, chatbot_id: str, tool_id: str, principal: Principal) -> ToolView:
        """One tool of the chatbot."""
        await self._owner(chatbot_id, principal)
        row = await self.pool.fetchrow(
            f"SELECT {_VIEW} FROM chatbot_tools WHERE chatbot_id = $1 AND id = $2",
            chatbot_id,
            _tool_id(tool_id),
        )
        if row is None:
            raise _no_tool(tool_id)
        return ToolView.model_validate(dict(row))

    async def create(self, chatbot_id: str, principal: Principal, body: ToolBody) -> ToolView:
        """Add a tool (ConflictError when the chatbot has one of that name)."""
        owner = await self._owner(chatbot_id, principal)
        values = _values(body)
        try:
            row = await self.pool.fetchrow(_INSERT, uuid.uuid4(), chatbot_id, owner, *values)
        except asyncpg.UniqueViolationError:
            raise ConflictError(
                f"the chatbot already has a tool named {body.name}", code="tool_exists"
            ) from None
        assert row is not None
        return ToolView.model_validate(dict(row))

    async def replace(
        self, chatbot_id: str, tool_id: str, principal: Principal, body: ToolBody
    ) -> ToolView:
        """Replace a tool's definition (its secret kept unless a new one is given)."""
        await self._owner(chatbot_id, principal)
        values = _values(body)
        try:
            row = await self.pool.fetchrow(_REPLACE, chatbot_id, _tool_id(tool_id), *values)
        except asyncpg.UniqueViolationError:
            raise ConflictError(
                f"the chatbot already has a tool named {body.name}", code="tool_exists"
            ) from None
        if row is None:
            raise _no_tool(tool_id)
        return ToolView.model_validate(dict(row))

    async def delete(self, chatbot_id: str, tool_id: str, principal: Principal) -> None:
        """Remove a tool: later sessions of the chatbot no longer offer it."""
        await self._owner(chatbot_id, principal)
        deleted = await self.pool.fetchval(
            "DELETE FROM chatbot_tools WHERE chatbot_id = $1 AND id = $2 RETURNING id",
            chatbot_id,
            _tool_id(tool_id),
        )
        if deleted is None:
            raise _no_tool(tool_id)
