"""OpenAI chat completions, streamed, through the official ``openai`` SDK: OpenAI itself, and
any server that speaks the same protocol at a base URL (Ollama, vLLM, llama.cpp server).

The answer streams as ``chat.completion.chunk`` events with ``stream_options.include_usage``
so the last chunk carries the token counts. The SDK retries 429/5xx and connection errors
before the stream starts (honouring ``retry-after``); once a token was yielded nothing is
retried. Closing the generator closes the HTTP response, which is how OpenAI cancels.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import TYPE_CHECKING, cast

import httpx2
import openai

from parley_common.vendor_errors import SdkErrors, Vendor
from parley_llm.providers.base import ChatMessage, LlmUsage, StreamsThroughTools, ToolCall, ToolSpec
from parley_llm.providers.chat_chunks import ToolCallDeltas, chunk_text, wire_messages, wire_tools

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolUnionParam

OPENAI = Vendor("openai", "OpenAI", "OPENAI_API_KEY", "LLM")
OPENAI_COMPATIBLE = Vendor(
    "openai_compatible", "the OpenAI-compatible server", "OPENAI_COMPATIBLE_API_KEY", "LLM"
)
# Sent to a compatible server that wants no key: the SDK insists on one, and it must never
# fall back to OPENAI_API_KEY, which belongs to OpenAI and not to that server.
NO_KEY = "none"
_CONNECT_TIMEOUT_S = 5.0
SDK_ERRORS = SdkErrors.stainless(openai, httpx2)


class OpenAIChatProvider(StreamsThroughTools):
    """Streams answers from an OpenAI-protocol chat model.

    OpenAI itself gets the budget as ``max_completion_tokens`` (its reasoning models refuse
    ``max_tokens``). A ``compatible_server`` gets ``max_tokens``, which Ollama, vLLM and
    llama.cpp server all read, and none of OpenAI's account headers (the SDK would add
    ``OPENAI_ORG_ID`` / ``OPENAI_PROJECT_ID`` from the environment).
    """

    def __init__(
        self,
        *,
        name: str,
        vendor: Vendor,
        api_key: str,
        base_url: str | None,
        model: str,
        timeout_s: float,
        max_retries: int,
        compatible_server: bool = False,
    ) -> None:
        self.name = name
        self.default_model = model
        self._vendor = vendor
        self._timeout_s = timeout_s
        self._compatible_server = compatible_server
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            timeout=httpx2.Timeout(timeout_s, connect=min(timeout_s, _CONNECT_TIMEOUT_S)),
            max_retries=max_retries,
        )
        if compatible_server:
            self._client.organization = None
            self._client.project = None

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
        modern = not self._compatible_server
        calls = ToolCallDeltas()
        with SDK_ERRORS.translated(self._vendor, model=chosen, timeout_s=self._timeout_s):
            chunks = await self._client.chat.completions.create(
                model=chosen,
                messages=cast("list[ChatCompletionMessageParam]", wire_messages(messages)),
                stream=True,
                stream_options={"include_usage": True},
                max_completion_tokens=max_tokens if modern else openai.omit,
                max_tokens=openai.omit if modern else max_tokens,
                tools=cast("list[ChatCompletionToolUnionParam]", wire_tools(tools))
                if tools
                else openai.omit,
            )
            async with chunks:
                async for chunk in chunks:
                    calls.add(chunk)
                    text = chunk_text(chunk, usage)
                    if text:
                        yield text
        for call in calls.calls():
            yield call
