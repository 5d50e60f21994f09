"""Groq chat completions, streamed, through the official ``groq`` SDK.

Groq speaks OpenAI's chunk format at ``/openai/v1/chat/completions``; its token counts come
in ``x_groq.usage`` on the final chunk (and in ``usage`` where it sends one). The SDK
retries 429/5xx before the stream starts; nothing is retried once a token was yielded, and
closing the generator closes the HTTP response.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import TYPE_CHECKING, cast

import groq
import httpx

from parley_common.vendor_errors import SdkErrors, Vendor
from parley_llm.providers.base import ChatMessage, LlmUsage, StreamsThroughTools, ToolCall, ToolSpec
from parley_llm.providers.chat_chunks import (
    ToolCallDeltas,
    chunk_text,
    record_counts,
    wire_messages,
    wire_tools,
)

if TYPE_CHECKING:
    from groq.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

VENDOR = Vendor("groq", "Groq", "GROQ_API_KEY", "LLM")
SDK_ERRORS = SdkErrors.stainless(groq, httpx)
_CONNECT_TIMEOUT_S = 5.0


class GroqChatProvider(StreamsThroughTools):
    """Streams answers from a Groq-hosted model."""

    name = "groq"

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None,
        model: str,
        timeout_s: float,
        max_retries: int,
    ) -> None:
        self.default_model = model
        self._timeout_s = timeout_s
        self._client = groq.AsyncGroq(
            api_key=api_key,
            base_url=base_url,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, _CONNECT_TIMEOUT_S)),
            max_retries=max_retries,
        )

    async def aclose(self) -> None:
        """Close the SDK client's connection pool (at shutdown)."""
        await self._client.close()

    async def stream_tools(
        self,
        messages: Sequence[ChatMessage],
        max_tokens: int,
        tools: Sequence[ToolSpec],
        *,
        model: str | None = None,
        usage: LlmUsage | None = None,
    ) -> AsyncGenerator[str | ToolCall, None]:
        """Yield text deltas, then the tool calls the model made (see
        ``ToolCallingProvider.stream_tools``)."""
        chosen = model or self.default_model
        if usage is not None:
            usage.model = chosen
        calls = ToolCallDeltas()
        with SDK_ERRORS.translated(VENDOR, model=chosen, timeout_s=self._timeout_s):
            chunks = await self._client.chat.completions.create(
                model=chosen,
                messages=cast("list[ChatCompletionMessageParam]", wire_messages(messages)),
                stream=True,
                max_completion_tokens=max_tokens,
                tools=cast("list[ChatCompletionToolParam]", wire_tools(tools))
                if tools
                else groq.omit,
            )
            async with chunks:
                async for chunk in chunks:
                    calls.add(chunk)
                    text = chunk_text(chunk, usage)
                    if chunk.x_groq is not None:
                        record_counts(chunk.x_groq.usage, usage)
                    if text:
                        yield text
        for call in calls.calls():
            yield call
