"""A chatbot's tools, which its model may call by voice:
``/api/v1/chatbots/{chatbot_id}/tools`` (list, create) and ``.../{tool_id}`` (read,
replace, delete).

Webhook URLs must be on a host of ``PARLEY_TOOL_HOSTS`` (422 ``tool_host_not_allowed``
otherwise); argument schemas must be valid JSON schemas of an object; secrets are accepted
and never returned. Sessions started after a change use the new tools.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from parley_common.contracts.rest import ErrorBody
from parley_common.contracts.tools import ToolBody, ToolView
from parley_gateway.auth import CurrentUser
from parley_gateway.routes.deps import GatewayDep
from parley_gateway.sessions.tool_store import ToolStore

router = APIRouter(prefix="/api/v1/chatbots/{chatbot_id}/tools", tags=["tools"])


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


_NOT_FOUND = _error("No such chatbot or tool, or another user's")
_WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    404: _NOT_FOUND,
    409: _error("The chatbot already has a tool of that name (tool_exists)"),
    422: _error("An invalid tool, or a URL whose host is not allowed (tool_host_not_allowed)"),
}


@router.get("", response_model=list[ToolView], responses={404: _NOT_FOUND})
async def list_tools(
    gateway: GatewayDep, principal: CurrentUser, chatbot_id: str
) -> list[ToolView]:
    """The chatbot's tools, by name."""
    return await ToolStore(gateway.pool).list(chatbot_id, principal)


@router.post("", status_code=201, response_model=ToolView, responses=_WRITE_ERRORS)
async def create_tool(
    gateway: GatewayDep, principal: CurrentUser, chatbot_id: str, body: ToolBody
) -> ToolView:
    """Give the chatbot a tool: a webhook, or a built-in enabled by name."""
    return await ToolStore(gateway.pool).create(chatbot_id, principal, body)


@router.get("/{tool_id}", response_model=ToolView, responses={404: _NOT_FOUND})
async def get_tool(
    gateway: GatewayDep, principal: CurrentUser, chatbot_id: str, tool_id: str
) -> ToolView:
    """One of the chatbot's tools."""
    return await ToolStore(gateway.pool).get(chatbot_id, tool_id, principal)


@router.put("/{tool_id}", response_model=ToolView, responses=_WRITE_ERRORS)
async def replace_tool(
    gateway: GatewayDep, principal: CurrentUser, chatbot_id: str, tool_id: str, body: ToolBody
) -> ToolView:
    """Replace a tool's definition; an omitted ``secret_value`` keeps the stored secret."""
    return await ToolStore(gateway.pool).replace(chatbot_id, tool_id, principal, body)


@router.delete("/{tool_id}", status_code=204, responses={404: _NOT_FOUND})
async def delete_tool(
    gateway: GatewayDep, principal: CurrentUser, chatbot_id: str, tool_id: str
) -> Response:
    """Remove a tool."""
    await ToolStore(gateway.pool).delete(chatbot_id, tool_id, principal)
    return Response(status_code=204)
