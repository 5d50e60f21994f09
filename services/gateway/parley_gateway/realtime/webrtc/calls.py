"""The WebRTC calls of one gateway: each answered, then served by a task of one TaskGroup that
lives as long as the application, and closed with it."""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType

from parley_common.contracts.webrtc import SdpAnswer, SdpOffer
from parley_common.errors import NotFoundError, ServiceUnavailableError
from parley_gateway.realtime.webrtc.peer import PeerCall
from parley_gateway.realtime.webrtc.settings import WebRtcSettings
from parley_gateway.routes.deps import Gateway
from parley_gateway.sessions.store import SessionRecord

log = logging.getLogger(__name__)

WEBRTC_DISABLED = "webrtc_disabled"
WEBRTC_CAPACITY = "webrtc_capacity"


class WebRtcCalls:
    """Opens and owns the gateway's peer connections (an async context manager)."""

    def __init__(self, settings: WebRtcSettings) -> None:
        self.settings = settings
        self._calls: dict[PeerCall, asyncio.Task[None]] = {}
        self._tg: asyncio.TaskGroup | None = None

    @property
    def active(self) -> int:
        """Peer connections open now (answered and not yet closed)."""
        return len(self._calls)

    def require_enabled(self) -> None:
        """A 404 ``webrtc_disabled`` unless WebRTC is on (clients then use the WebSocket)."""
        if not self.settings.enabled:
            raise NotFoundError("WebRTC is disabled on this server", code=WEBRTC_DISABLED)

    async def open(self, gateway: Gateway, record: SessionRecord, offer: SdpOffer) -> SdpAnswer:
        """Answer ``offer`` for ``record``'s session and serve the call in the background."""
        self.require_enabled()
        if self._tg is None:
            raise ServiceUnavailableError("the gateway is not serving calls", code=WEBRTC_CAPACITY)
        if len(self._calls) >= self.settings.max_peers:
            raise ServiceUnavailableError(
                f"this gateway serves {self.settings.max_peers} WebRTC calls already",
                code=WEBRTC_CAPACITY,
            )
        call = PeerCall(gateway, record, self.settings)
        answer = await call.answer(offer)
        self._calls[call] = self._tg.create_task(self._serve(call))
        return answer

    async def _serve(self, call: PeerCall) -> None:
        try:
            await call.run()
        except Exception:
            # One failing call never takes the others (nor the gateway) down.
            log.exception("webrtc call failed")
        finally:
            self._calls.pop(call, None)

    async def __aenter__(self) -> WebRtcCalls:
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in self._calls.values():
            task.cancel()
        tg, self._tg = self._tg, None
        assert tg is not None
        await tg.__aexit__(exc_type, exc, tb)
