"""S2's outgoing audio: every answer as one whole, playable file.

S2's client plays each binary message it receives with ``new Audio(blobURL)``, so a message
must be a complete file, and one turn one message. The turn's PCM is gathered until the TTS
says it is complete, then encoded (``AnswerFormat``) and sent; turns go out in the order
they end. Parley cannot cut a file short once the client has it: a turn counts as heard
whole once sent, and not at all before.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

from parley_common.cancellation import raise_if_cancelling
from parley_gateway.realtime.playout import KEEP_FINISHED_TURNS, SendAudio, TurnAudio, TurnCallback
from parley_gateway.sessions.turn_result import AnswerFormat


class AnswerFiles:
    """One connection's answers as files (an ``AudioOutput``). ``on_sent`` follows the
    sending of a turn's file, ``on_end`` every finished turn, with or without audio."""

    def __init__(
        self, send: SendAudio, on_sent: TurnCallback, on_end: TurnCallback, answer: AnswerFormat
    ) -> None:
        self.send = send
        self.on_sent = on_sent
        self.on_end = on_end
        self.answer = answer
        self.turns: dict[int, TurnAudio] = {}
        self._pcm: dict[int, bytearray] = {}
        self._ended: deque[int] = deque()
        self._wake = asyncio.Event()
        self._sent_total_ms = 0.0

    def played_ms(self, now: float | None = None) -> float:
        """Everything sent counts as played: the client has the whole file."""
        return self._sent_total_ms

    def is_playing(self, now: float | None = None) -> bool:
        """Nothing sent can be stopped, so nothing is "playing" in the barge-in sense."""
        return False

    def add(self, turn_id: int, pcm: bytes, rate: int, text_start: int, text_end: int) -> None:
        """Gather audio of ``turn_id`` that speaks reply characters [text_start, text_end)."""
        turn = self.turns.get(turn_id)
        if turn is None:
            turn = self.turns[turn_id] = TurnAudio(turn_id, rate)
        self._pcm.setdefault(turn_id, bytearray()).extend(pcm)
        turn.queued(pcm, text_start, text_end)

    def end(self, turn_id: int, rate: int) -> None:
        """The TTS has sent all audio of ``turn_id``: its file goes out next."""
        turn = self.turns.get(turn_id)
        if turn is None:
            turn = self.turns[turn_id] = TurnAudio(turn_id, rate)
        if not turn.ended:
            turn.ended = True
            self._ended.append(turn_id)
            self._wake.set()

    def drop(self, turn_id: int) -> TurnAudio | None:
        """Send nothing of ``turn_id`` that is not sent yet."""
        self._pcm.pop(turn_id, None)
        return self.turns.pop(turn_id, None)

    async def run(self) -> None:
        """Encode and send each ended turn, until cancelled."""
        while True:
            raise_if_cancelling()
            if not self._ended:
                self._wake.clear()
                await self._wake.wait()
                continue
            turn_id = self._ended.popleft()
            turn = self.turns.get(turn_id)
            if turn is None:
                continue  # dropped
            pcm = self._pcm.pop(turn_id, None)
            if pcm:
                encoded = await self.answer.encode(bytes(pcm), turn.rate)
                if self.turns.get(turn_id) is not turn:
                    continue  # dropped while it was being encoded
                turn.timeline_start_ms = self._sent_total_ms
                await self.send(encoded.data)
                turn.first_sent_at = time.perf_counter()
                turn.sent_ms = turn.queued_ms
                self._sent_total_ms += turn.queued_ms
                await self.on_sent(turn)
            turn.finished = True
            await self.on_end(turn)
            finished = [t for t in self.turns.values() if t.finished]
            for old in finished[:-KEEP_FINISHED_TURNS]:
                del self.turns[old.turn_id]
