"""A chatbot's own tool: an HTTPS (or HTTP) endpoint on an allow-listed host that gets the
call's arguments as a JSON ``POST`` and answers the result.

The host is checked against ``PARLEY_TOOL_HOSTS`` before every call (the list may have
changed since the tool was stored) and redirects are not followed (one could lead off the
list). The secret header is sent and nothing else sees it: errors name the tool and the
status, never the URL, the headers or the vendor's words.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from parley_common.errors import ParleyError, ProviderFailedError
from parley_common.tool_hosts import check_tool_url
from parley_llm.providers.base import ToolSpec
from parley_llm.tools.base import ToolOutcome

__all__ = ["MAX_RESULT_CHARS", "WebhookTool"]

# The model gets at most this much of an answer (a prompt is not a place for a page of HTML).
MAX_RESULT_CHARS = 4000
MAX_RESULT_BYTES = 4 * MAX_RESULT_CHARS  # enough for that many characters of UTF-8
_USER_AGENT = "parley-tools/1"


@dataclass(frozen=True, slots=True)
class WebhookTool:
    """One webhook tool."""

    spec: ToolSpec
    url: str
    timeout_s: float
    secret_header: str | None = None
    secret_value: str | None = field(default=None, repr=False)

    async def run(self, arguments: Mapping[str, Any]) -> ToolOutcome:
        """POST ``arguments`` and return the answer's body (cut to ``MAX_RESULT_CHARS``)."""
        check_tool_url(self.url)
        headers = {"user-agent": _USER_AGENT}
        if self.secret_header and self.secret_value:
            headers[self.secret_header] = self.secret_value
        try:
            # A client per call: calls are rare, and nothing outlives the turn that made it.
            # trust_env off: a proxy from the environment must not see the secret header.
            async with (
                httpx.AsyncClient(trust_env=False, follow_redirects=False) as client,
                client.stream(
                    "POST",
                    self.url,
                    content=json.dumps(dict(arguments)),
                    headers={**headers, "content-type": "application/json"},
                    # The caller's deadline governs; this only bounds a connection left behind.
                    timeout=self.timeout_s + 1.0,
                ) as response,
            ):
                if not response.is_success:
                    raise _failed(self.spec.name, f"answered HTTP {response.status_code}")
                body = await _head(response)
        except httpx.TimeoutException as exc:
            raise _failed(self.spec.name, "did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise _failed(self.spec.name, "could not be reached") from exc
        return ToolOutcome(body.decode("utf-8", errors="replace")[:MAX_RESULT_CHARS])


async def _head(response: httpx.Response) -> bytes:
    """The start of the answer's body: a webhook that sends megabytes is not read whole."""
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) >= MAX_RESULT_BYTES:
            break
    return bytes(body)


def _failed(name: str, what: str) -> ParleyError:
    return ProviderFailedError(f"the tool {name} {what}", code="tool_failed", provider=name)
