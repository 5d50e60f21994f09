"""What the assistant asks of the call through its tools (``AssistantAction`` on the
session's status subject): the client hears of it as an ``action`` event, and ``end_call``
ends the session once that turn's answer has been played (its goodbye heard), closing the
socket with 4410 and a reason saying who hung up."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

from starlette.websockets import WebSocketState

from parley_common.contracts.bus import AssistantAction
from parley_common.contracts.ws import CLOSE_SESSION_ENDED, ActionData, ActionEvent, ServerEvent
from parley_gateway.routes.deps import Gateway

__all__ = ["AssistantActions"]

log = logging.getLogger(__name__)
ENDED_REASON = "the assistant ended the call"
# Turns whose hang-up is still waiting for their audio: a session has one or two at most.
MAX_PENDING = 4


class AssistantActions:
    """The assistant's requests of one session's connection."""

    def __init__(
        self, gateway: Gateway, session_id: str, send: Callable[[ServerEvent], Awaitable[None]]
    ) -> None:
        self._gateway = gateway
        self._sid = session_id
        self._send = send
        self._end_after: list[int] = []

    async def requested(self, action: AssistantAction) -> None:
        """Tell the client; remember a hang-up until its turn has played."""
        await self._send(ActionEvent(data=ActionData(turn_id=action.turn_id, action=action.action)))
        if action.action == "end_call":
            self._end_after = [*self._end_after, action.turn_id][-MAX_PENDING:]

    async def played(self, turn_id: int) -> None:
        """``turn_id``'s answer finished playing: hang up if the assistant asked to."""
        if turn_id not in self._end_after:
            return
        self._end_after.clear()
        log.info("the assistant ended the call", extra={"session_id": self._sid})
        await self._gateway.lifecycle.end(self._sid)
        websocket = self._gateway.connections.get(self._sid)
        if websocket is not None and websocket.application_state is WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError):  # the client left meanwhile
                await websocket.close(CLOSE_SESSION_ENDED, ENDED_REASON)
