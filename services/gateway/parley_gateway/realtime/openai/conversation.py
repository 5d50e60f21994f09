"""The conversation as an OpenAI Realtime client sees it: items and responses, told as the
pipeline's turns happen.

A user item is a committed turn: with turn detection on, the speech the STT heard (its id is
given at ``speech_started``, committed with the final transcript); with it off, the buffer
the client committed; or an item the client created. A response is one assistant turn of
the dialogue worker, from its first text to the end of its audio (or of its text, for a
text-only response), cancelled when the turn is interrupted. Parley answers every user turn
by itself, so ``response.create`` joins the answer under way or about to come.
"""

from __future__ import annotations

import asyncio
import functools
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Concatenate, Literal, ParamSpec

from parley_common.errors import BadInputError, ConflictError
from parley_gateway.realtime.openai import wire
from parley_gateway.realtime.openai.items import Items
from parley_gateway.realtime.openai.responses import Modality, Requested, ResponseState, usage_of
from parley_gateway.realtime.openai.wire import Item, ItemContent, new_id

Send = Callable[[wire.ServerEvent], Awaitable[None]]
P = ParamSpec("P")

RECENT_USAGE = 8


@dataclass
class _Speech:
    """The user item being spoken (turn detection on)."""

    item_id: str
    start_ms: int
    end_ms: int | None = None


@dataclass
class _Awaited:
    """A committed user audio item waiting for its transcript."""

    item: Item
    seconds: float
    told: str = ""  # transcription deltas sent so far


def _atomic(
    method: Callable[Concatenate[Conversation, P], Coroutine[Any, Any, None]],
) -> Callable[Concatenate[Conversation, P], Coroutine[Any, Any, None]]:
    """The method's events go out together: the bridge's subjects call in concurrently, and
    a response must not start between a user item's ``added`` and ``done``."""

    @functools.wraps(method)
    async def locked(conversation: Conversation, /, *args: P.args, **kwargs: P.kwargs) -> None:
        async with conversation._lock:
            await method(conversation, *args, **kwargs)

    return locked


@dataclass
class Conversation:
    """Items and responses of one connection; ``send`` emits server events."""

    send: Send
    modality: Callable[[], Modality]
    transcribing: Callable[[], bool]
    manual: Callable[[], bool]
    items: Items = field(init=False)
    _speech: _Speech | None = None
    _awaited: deque[_Awaited] = field(default_factory=deque)
    _unanswered: int = 0  # user items no response has started for
    _response: ResponseState | None = None
    _last: ResponseState | None = None
    _requested: Requested | None = None
    _usage: OrderedDict[int, dict[str, int]] = field(default_factory=OrderedDict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _newest_turn: int = 0

    def __post_init__(self) -> None:
        self.items = Items(self.send)

    def is_active(self, item_id: str) -> bool:
        """Whether the item is the output of the response under way."""
        response = self._response
        return response is not None and response.item is not None and response.item.id == item_id

    @_atomic
    async def remove(self, item_id: str) -> None:
        """Forget an item and tell the client."""
        await self.items.remove(item_id)

    @_atomic
    async def truncated(self, item_id: str, heard: str, content_index: int, end_ms: int) -> None:
        """The client heard ``heard`` of an assistant item."""
        await self.items.truncated(item_id, heard, content_index, end_ms)

    # -- user input ----------------------------------------------------------------------
    @_atomic
    async def speech_started(self, at_ms: int) -> None:
        """The STT heard speech begin (not told in manual mode, where the client decides)."""
        if self.manual():
            return
        if self._speech is None:
            self._speech = _Speech(new_id("item"), at_ms)
        await self.send(wire.SpeechStarted(audio_start_ms=at_ms, item_id=self._speech.item_id))

    @_atomic
    async def speech_stopped(self, at_ms: int) -> None:
        """The user fell silent (the turn may go on if they resume)."""
        if self.manual() or self._speech is None:
            return
        self._speech.end_ms = at_ms
        await self.send(wire.SpeechStopped(audio_end_ms=at_ms, item_id=self._speech.item_id))

    @_atomic
    async def committed_audio(self, seconds: float) -> None:
        """The client committed the input buffer (manual mode)."""
        item_id = self._speech.item_id if self._speech else new_id("item")
        self._speech = None
        await self.send(wire.AudioCommitted(item_id=item_id, previous_item_id=self.items.last_id))
        await self._user_audio(item_id, seconds)

    @_atomic
    async def audio_item(self, item_id: str, seconds: float) -> None:
        """The client created a user item holding audio."""
        await self._user_audio(item_id, seconds)

    @_atomic
    async def text_item(self, item_id: str, text: str) -> None:
        """The client created a user text message."""
        item = Item(id=item_id, role="user", content=[ItemContent(type="input_text", text=text)])
        await self.items.add(item)
        await self.items.done(item)
        self._unanswered += 1

    @_atomic
    async def cleared(self) -> None:
        """The client cleared the input buffer."""
        if self.manual():
            self._speech = None
        await self.send(wire.AudioCleared())

    async def _user_audio(self, item_id: str, seconds: float) -> None:
        item = Item(id=item_id, role="user", content=[ItemContent(type="input_audio")])
        await self.items.add(item)
        await self.items.done(item)
        self._awaited.append(_Awaited(item, seconds))
        self._unanswered += 1

    @_atomic
    async def user_transcript(self, text: str, final: bool) -> None:
        """A transcript of the user's speech from the STT."""
        if not self._awaited:
            if final and text.strip() and not self.manual():
                await self._commit_speech()
            elif not final:
                return
        if not self._awaited:
            return
        awaited = self._awaited[0]
        if self.transcribing() and text.startswith(awaited.told) and len(text) > len(awaited.told):
            delta = text[len(awaited.told) :]
            awaited.told = text
            await self.send(wire.TranscriptionDelta(item_id=awaited.item.id, delta=delta))
        if not final:
            return
        self._awaited.popleft()
        awaited.item.content[0].transcript = text
        if self.transcribing():
            usage = wire.DurationUsage(seconds=awaited.seconds)
            await self.send(
                wire.TranscriptionCompleted(item_id=awaited.item.id, transcript=text, usage=usage)
            )

    async def _commit_speech(self) -> None:
        speech, self._speech = self._speech, None
        item_id = speech.item_id if speech else new_id("item")
        seconds = 0.0
        if speech is not None and speech.end_ms is not None:
            seconds = max(0, speech.end_ms - speech.start_ms) / 1000
        await self.send(wire.AudioCommitted(item_id=item_id, previous_item_id=self.items.last_id))
        await self._user_audio(item_id, seconds)

    # -- responses -----------------------------------------------------------------------
    def request(self, modality: Modality | None, metadata: dict[str, str] | None) -> None:
        """``response.create``: join the answer under way, or the one the last user item
        will get. Without a user item to answer it is refused: Parley does not speak
        unprompted."""
        response = self._response
        if response is not None and response.requested:
            raise ConflictError(
                "the conversation already has an active response",
                code="conversation_already_has_active_response",
            )
        if response is not None:
            response.requested = True
        elif self._unanswered:
            self._requested = Requested(modality, metadata)
        elif self._last is not None and not self._last.requested:
            self._last.requested = True  # it started and ended before this request came
        else:
            raise BadInputError(
                "Parley answers each user message once, by itself: add a user item or commit"
                " input audio, and its response follows",
                code="response_needs_input",
            )

    def cancel(self, response_id: str | None) -> None:
        """``response.cancel``: the response under way is to be interrupted."""
        response = self._response
        if response is None or response_id not in (None, response.id):
            raise BadInputError("there is no active response to cancel", code="response_not_active")
        response.cancel_requested = True

    def wants_audio(self, turn_id: int) -> bool:
        """Whether the turn's response speaks."""
        response = self._response
        if response is not None and response.turn_id == turn_id:
            return response.modality == "audio"
        return self.modality() == "audio"

    @_atomic
    async def reply_delta(self, turn_id: int, delta: str) -> None:
        """A piece of a turn's answer."""
        response = await self._response_of(turn_id)
        if response is None:
            return
        response.text += delta
        await self.send(response.delta(delta))

    @_atomic
    async def reply_done(self, turn_id: int, text: str) -> None:
        """A turn's answer is complete; a spoken one ends with its audio."""
        if not text and (self._response is None or self._response.turn_id != turn_id):
            if turn_id > self._newest_turn:
                await self._empty_response(turn_id)
            return
        response = await self._response_of(turn_id)
        if response is None:
            return
        response.final = text
        await self.send(response.text_done(text))
        if response.modality == "audio" and text:
            return  # its audio is still being sent
        await self._finish(response, "completed")

    @_atomic
    async def audio_delta(self, turn_id: int | None, audio_b64: str) -> None:
        """A chunk of the current response's audio."""
        response = await self._response_of(turn_id) if turn_id is not None else None
        if response is None:
            return
        await self.send(response.audio(audio_b64))

    @_atomic
    async def audio_end(self, turn_id: int) -> None:
        """All of a turn's audio has been sent."""
        response = self._response
        if response is not None and response.turn_id == turn_id and response.final is not None:
            await self._finish(response, "completed")

    @_atomic
    async def interrupted(self, turn_id: int) -> None:
        """The turn was cut (barge-in, cancel, or a newer user turn)."""
        response = self._response
        if response is None or response.turn_id != turn_id:
            if turn_id > self._newest_turn:  # taken by the dialogue, cut before it spoke
                self._unanswered, self._newest_turn = 0, turn_id
            return
        cancelled = response.cancel_requested
        await self._finish(
            response, "cancelled", reason="client_cancelled" if cancelled else "turn_detected"
        )

    @_atomic
    async def failed(self, code: str, message: str) -> None:
        """The pipeline failed the response under way."""
        if self._response is not None:
            error = {"type": "server_error", "code": code, "message": message}
            await self._finish(self._response, "failed", error=error)

    def usage(self, turn_id: int, unit: str, quantity: float) -> None:
        """The dialogue worker's token count for a turn."""
        counts = self._usage.setdefault(turn_id, {})
        counts[unit] = counts.get(unit, 0) + int(quantity)
        while len(self._usage) > RECENT_USAGE:
            self._usage.popitem(last=False)

    async def _response_of(self, turn_id: int) -> ResponseState | None:
        """The response of ``turn_id``, started by its first text or audio; None for a turn
        older than the newest one (its messages are late)."""
        response = self._response
        if response is not None and response.turn_id == turn_id:
            return response
        if turn_id <= self._newest_turn:
            return None
        if response is not None:
            await self._finish(response, "cancelled", reason="turn_detected")
        return await self._start(turn_id)

    def _take_request(self, turn_id: int) -> tuple[Requested, bool]:
        """What a response.create asked of the response starting now, and whether one did."""
        requested, self._requested = self._requested, None
        self._unanswered = 0
        self._newest_turn = turn_id
        return requested or Requested(), requested is not None

    async def _start(self, turn_id: int) -> ResponseState:
        requested, asked = self._take_request(turn_id)
        response = ResponseState.start(turn_id, requested, asked, self.modality())
        assert response.item is not None
        self._response = response
        self.items.answered(response.item.id, turn_id)
        await self.send(wire.ResponseCreated(response=response.view("in_progress")))
        await self.send(
            wire.OutputItemAdded(response_id=response.id, item=response.item.model_copy(deep=True))
        )
        await self.items.add(response.item)
        await self.send(response.part_added())
        return response

    async def _empty_response(self, turn_id: int) -> None:
        """A turn with nothing to say: a response without output."""
        requested, asked = self._take_request(turn_id)
        modality = requested.modality or self.modality()
        response = ResponseState(turn_id, modality, requested.metadata, asked, new_id("resp"))
        self._last = response
        await self.send(wire.ResponseCreated(response=response.view("in_progress")))
        await self.send(wire.ResponseDone(response=response.view("completed")))

    async def _finish(
        self,
        response: ResponseState,
        status: Literal["completed", "cancelled", "failed"],
        *,
        reason: Literal["turn_detected", "client_cancelled"] | None = None,
        error: dict[str, str] | None = None,
    ) -> None:
        self._response, self._last = None, response
        item = response.item
        assert item is not None
        text = response.final if response.final is not None else response.text
        self.items.streamed(item.id, response.text)
        if response.final is None:  # cut short: what was generated is the item's text
            await self.send(response.text_done(text))
        if response.modality == "audio":
            await self.send(response.audio_done())
        await self.send(response.part_done(text))
        item.status = "completed" if status == "completed" else "incomplete"
        await self.send(
            wire.OutputItemDone(response_id=response.id, item=item.model_copy(deep=True))
        )
        await self.items.done(item)
        details = None
        if status != "completed":
            details = wire.StatusDetails(type=status, reason=reason, error=error)
        usage = usage_of(self._usage.get(response.turn_id))
        await self.send(wire.ResponseDone(response=response.view(status, usage, details)))
        await self.send(wire.RateLimitsUpdated())
