"""The gateway's hold of a speculative answer: its messages are kept in arrival order and
played through the bridge's handlers on commit (also what arrives meanwhile), or dropped
with everything of the turn that comes later."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from parley_common.bus import MessageMeta, Received
from parley_common.contracts.bus import (
    Interrupt,
    InterruptReason,
    ReplyDelta,
    TurnCommitted,
    UserText,
    reply_adapter,
)
from parley_gateway.realtime.speculation import SpeculativeHold


def message(turn_id: int, payload: Any = b"") -> Received:
    data = payload if isinstance(payload, bytes) else payload.model_dump_json().encode()
    return Received("s", data, MessageMeta("sid", turn_id=turn_id), "", cast(Any, None))


class Bridge:
    """The bridge's side: handlers that record what reached the client, in order."""

    def __init__(self, hold: SpeculativeHold) -> None:
        self.hold = hold
        self.played: list[tuple[str, int, str]] = []

    async def on_reply(self, msg: Received) -> None:
        event = msg.decode(reply_adapter)
        if await self.hold.reply(msg, event, self.on_reply):
            return
        self.played.append(("reply", msg.meta.turn_id, event.type))

    async def on_audio(self, msg: Received) -> None:
        if self.hold.held(msg, self.on_audio):
            return
        await asyncio.sleep(0)  # the client's send: other messages may arrive meanwhile
        self.played.append(("audio", msg.meta.turn_id, msg.data.decode()))


async def test_a_committed_turn_plays_what_was_held_in_order_then_the_rest() -> None:
    bridge = Bridge(SpeculativeHold())
    await bridge.on_reply(message(3, UserText(text="hi", typed=False, speculative=True)))
    await bridge.on_reply(message(3, ReplyDelta(text="Hello")))
    await bridge.on_audio(message(3, b"a1"))
    await bridge.on_audio(message(2, b"old"))  # another turn passes
    assert bridge.played == [("audio", 2, "old")]

    # Audio arriving while the held part plays waits its turn behind it.
    commit = asyncio.create_task(bridge.on_reply(message(3, TurnCommitted())))
    await asyncio.sleep(0)
    await bridge.on_audio(message(3, b"a2"))
    await commit
    await bridge.on_audio(message(3, b"a3"))
    assert bridge.played[1:] == [
        ("reply", 3, "user.text"),
        ("reply", 3, "reply.delta"),
        ("audio", 3, "a1"),
        ("audio", 3, "a2"),
        ("audio", 3, "a3"),
    ]
    assert bridge.hold.holding is None


async def test_a_dropped_turn_is_never_played_nor_its_late_audio() -> None:
    hold = SpeculativeHold()
    bridge = Bridge(hold)
    await bridge.on_reply(message(4, UserText(text="hi", typed=False, speculative=True)))
    await bridge.on_audio(message(4, b"a1"))
    assert hold.dropped(Interrupt(turn_id=4, reason=InterruptReason.SPECULATION))
    await bridge.on_audio(message(4, b"late"))
    await bridge.on_reply(message(4, TurnCommitted()))  # too late: nothing to play
    assert bridge.played == []
    assert hold.held_messages == 0
    # Other interrupts are the bridge's to handle.
    assert not hold.dropped(Interrupt(turn_id=4, reason=InterruptReason.BARGE_IN))
