"""Pausing the native client's playout while speech over the assistant is judged: the
gateway's timeline stops where the client is, the client drops what it buffered
(``audio_pause``), and on resume the rest is sent again from there (``audio_resume``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from parley_common.contracts.bus import OverlapDismissed, OverlapStarted
from parley_common.contracts.session import SessionConfig
from parley_common.contracts.ws import AudioPauseEvent, AudioResumeEvent, TurnData
from parley_gateway.realtime.barge_in import Judging
from parley_gateway.realtime.playout import AudioOutput, Playout
from parley_gateway.settings import GatewaySettings

SendEvent = Callable[[AudioPauseEvent | AudioResumeEvent], Awaitable[None]]
# Publishes to the session's interrupt subject: the dialogue holds transcripts meanwhile.
TellDialogue = Callable[[OverlapStarted | OverlapDismissed], Awaitable[None]]


class PlayoutPauser:
    """The ``barge_in.Pauser`` of a native connection."""

    def __init__(self, playout: Playout, send: SendEvent, tell: TellDialogue) -> None:
        self.playout = playout
        self.send = send
        self.tell = tell

    async def pause(self, turn_id: int) -> None:
        """Hold turn ``turn_id``'s audio; the client stops and drops its buffer."""
        self.playout.pause(turn_id)
        await self.send(AudioPauseEvent(data=TurnData(turn_id=turn_id)))
        await self.tell(OverlapStarted(turn_id=turn_id))

    async def resume(self, turn_id: int, text: str) -> None:
        """Play on from where it paused; the overlap (``text``) is no question to answer."""
        await self.tell(OverlapDismissed(turn_id=turn_id, text=text))
        if self.playout.paused is None:
            return  # the turn was cut meanwhile: nothing is held
        await self.send(AudioResumeEvent(data=TurnData(turn_id=turn_id)))
        self.playout.resume()

    async def release(self, turn_id: int) -> None:
        """Resume the playout if it is still paused for ``turn_id`` (which is gone)."""
        if self.playout.paused == turn_id:
            await self.send(AudioResumeEvent(data=TurnData(turn_id=turn_id)))
            self.playout.resume()


def judging_for(
    config: SessionConfig,
    settings: GatewaySettings,
    playout: AudioOutput,
    send: SendEvent,
    tell: TellDialogue,
) -> Judging | None:
    """How a session judges speech over the assistant: None (stop at once) when it asked
    for ``barge_in="stop"`` or its client is not the native one (S2's answer files, phone
    and OpenAI Realtime clients have no pause event yet)."""
    if config.barge_in == "stop" or type(playout) is not Playout:
        return None
    return Judging(
        PlayoutPauser(playout, send, tell),
        settings.barge_in_window_ms / 1000,
        settings.barge_in_transcript_wait_ms / 1000,
    )
