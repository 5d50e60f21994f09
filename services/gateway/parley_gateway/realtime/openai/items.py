"""The conversation's items as a Realtime client sees them, and what a client may create.

Parley keeps the recent items (text and transcripts, never audio) so that a client can
retrieve, truncate or delete them; an assistant item remembers its Parley turn and the
answer as it was streamed, which is what its audio speaks.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Literal

from parley_common.errors import BadInputError, NotFoundError
from parley_gateway.realtime.openai import wire
from parley_gateway.realtime.openai.wire import InputItem, Item, new_id

MAX_ITEMS = 200  # older items are forgotten
Send = Callable[[wire.ServerEvent], Awaitable[None]]


def user_message_kind(item: InputItem) -> Literal["text", "audio"]:
    """What a created item holds; a BadInputError for anything Parley's memory cannot take
    (system or assistant history, tool calls and their outputs, images, mixed content)."""
    if item.type != "message" or item.role != "user":
        what = f"{item.role} messages" if item.type == "message" else f"{item.type} items"
        raise BadInputError(
            f"Parley's conversation takes user messages only, not {what}"
            " (no system or assistant history, no tool calls yet)",
            code="item_unsupported",
        )
    kinds = {part.type for part in item.content}
    if kinds == {"input_text"}:
        return "text"
    if kinds == {"input_audio"}:
        return "audio"
    raise BadInputError(
        "a user message holds input_text parts or input_audio parts",
        code="item_content_unsupported",
    )


class Items:
    """The last ``MAX_ITEMS`` items, in order; ``send`` tells the client of changes."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self._items: OrderedDict[str, Item] = OrderedDict()
        self._turns: dict[str, int] = {}  # assistant item -> its Parley turn
        self._spoken: dict[str, str] = {}  # assistant item -> its answer as streamed

    @property
    def last_id(self) -> str | None:
        """The id of the last item."""
        return next(reversed(self._items), None)

    def get(self, item_id: str) -> Item:
        """An item by id (NotFoundError when there is none, or it was forgotten)."""
        item = self._items.get(item_id)
        if item is None:
            raise NotFoundError(f"no item with id '{item_id}'", code="item_not_found")
        return item

    def turn_of(self, item_id: str) -> int | None:
        """The Parley turn of an assistant item."""
        return self._turns.get(item_id)

    def spoken(self, item_id: str) -> str:
        """An assistant item's answer as streamed (the text its audio speaks)."""
        return self._spoken.get(item_id, "")

    def free_id(self, wanted: str | None) -> str:
        """``wanted`` if it is free, else a fresh id (a taken one is a BadInputError)."""
        if wanted is not None and wanted in self._items:
            raise BadInputError(f"an item with id '{wanted}' exists", code="item_id_taken")
        return wanted or new_id("item")

    def answered(self, item_id: str, turn_id: int) -> None:
        """The assistant item is the answer of ``turn_id``."""
        self._turns[item_id] = turn_id

    def streamed(self, item_id: str, text: str) -> None:
        """The assistant item's answer as it was streamed."""
        self._spoken[item_id] = text

    async def add(self, item: Item) -> None:
        """Append an item (``conversation.item.added``)."""
        previous = self.last_id
        self._items[item.id] = item
        while len(self._items) > MAX_ITEMS:
            self._forget(next(iter(self._items)))
        await self.send(wire.ItemAdded(item=item.model_copy(deep=True), previous_item_id=previous))

    async def done(self, item: Item) -> None:
        """The item is complete (``conversation.item.done``)."""
        ids = list(self._items)
        index = ids.index(item.id) if item.id in self._items else 0
        previous = ids[index - 1] if index > 0 else None
        await self.send(wire.ItemDone(item=item.model_copy(deep=True), previous_item_id=previous))

    async def remove(self, item_id: str) -> None:
        """Forget an item (``conversation.item.deleted``)."""
        self._forget(item_id)
        await self.send(wire.ItemDeleted(item_id=item_id))

    async def truncated(self, item_id: str, heard: str, content_index: int, end_ms: int) -> None:
        """The client heard ``heard`` of an assistant item: its transcript is that now."""
        self.get(item_id).content[0].transcript = heard
        await self.send(
            wire.ItemTruncated(item_id=item_id, content_index=content_index, audio_end_ms=end_ms)
        )

    def _forget(self, item_id: str) -> None:
        self._items.pop(item_id, None)
        self._turns.pop(item_id, None)
        self._spoken.pop(item_id, None)
