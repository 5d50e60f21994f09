"""Which hosts a chatbot's webhook tools may call: ``PARLEY_TOOL_HOSTS``, a comma-separated
list of host names (``api.example.com``) or ``host:port`` pairs. Unset or empty allows none,
so a webhook reaches nothing its operator did not list. Checked when a tool is stored (the
gateway) and again before every call (the dialogue worker): the list may have changed."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from parley_common.errors import BadInputError

__all__ = ["HOSTS_ENV", "allowed_hosts", "check_tool_url"]

HOSTS_ENV = "PARLEY_TOOL_HOSTS"
_SCHEMES = ("http", "https")


def allowed_hosts() -> frozenset[str]:
    """The allow-list as configured now (lower-cased entries)."""
    raw = os.environ.get(HOSTS_ENV, "")
    return frozenset(entry.strip().lower() for entry in raw.split(",") if entry.strip())


def check_tool_url(url: str) -> None:
    """Refuse (``BadInputError``, code ``tool_host_not_allowed``) a URL that is not http(s)
    or whose host is not on the allow-list; the message names the host, never the path or
    query (which may carry a token)."""
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES or not parts.hostname:
        raise BadInputError("a tool URL must be an http or https URL", code="tool_url_invalid")
    host = parts.hostname.lower()
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise BadInputError("the tool URL's port is invalid", code="tool_url_invalid") from None
    allowed = allowed_hosts()
    if host not in allowed and f"{host}:{port}" not in allowed:
        raise BadInputError(
            f"tool host {host} is not allowed (see {HOSTS_ENV})", code="tool_host_not_allowed"
        )
