"""A chatbot's tools as ``/api/v1/chatbots/{chatbot_id}/tools`` takes and returns them.

A tool is a user-defined HTTP webhook (``kind="webhook"``: a URL on an allow-listed host, a
JSON schema for its arguments, a timeout, an optional secret header) or one of the built-ins
a chatbot enables by name (``kind="builtin"``). The secret is write-only: a view says
whether one is set, never what it is.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jsonschema import Draft202012Validator, SchemaError
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from parley_common.contracts.session import Text

__all__ = ["Builtin", "ToolBody", "ToolCallView", "ToolKind", "ToolView", "check_parameters"]

ToolKind = Literal["webhook", "builtin"]
# What both OpenAI and Anthropic accept as a function name.
NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
HEADER_PATTERN = r"^[A-Za-z0-9-]{1,100}$"
EMPTY_OBJECT: dict[str, Any] = {"type": "object", "properties": {}}


class Builtin(StrEnum):
    """The tools Parley itself provides; a chatbot enables each by name."""

    CURRENT_TIME = "current_time"
    END_CALL = "end_call"
    SWITCH_TO_TEXT = "switch_to_text"
    KNOWLEDGE_SEARCH = "knowledge_search"


def check_parameters(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` if it is a valid JSON schema of an object (what function calling takes);
    a ValueError saying why not otherwise. Checked as draft 2020-12, the draft the model
    APIs use, whatever ``$schema`` says (an unknown one would only warn)."""
    if schema.get("type") != "object":
        raise ValueError('parameters must be a JSON schema with "type": "object"')
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ValueError(f"parameters is not a valid JSON schema: {exc.message}") from None
    return schema


class ToolBody(BaseModel):
    """Body of ``POST`` (create) and ``PUT`` (replace) on a chatbot's tools. On ``PUT`` an
    omitted ``secret_value`` keeps the stored one (it is never read back to resend it)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    kind: ToolKind = "webhook"
    description: Text = Field(default="", max_length=1024)
    parameters: dict[str, Any] = Field(default_factory=lambda: dict(EMPTY_OBJECT))
    url: Text | None = Field(default=None, max_length=2000)
    timeout_s: float = Field(default=5.0, gt=0, le=30)
    secret_header: str | None = Field(default=None, pattern=HEADER_PATTERN)
    secret_value: SecretStr | None = Field(default=None, max_length=4000)
    # current_time: the user's zone (IANA name) when the model does not name one.
    timezone: str | None = Field(default=None, max_length=64)
    enabled: bool = True

    @field_validator("parameters")
    @classmethod
    def _schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_parameters(value)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _kind_fields(self) -> ToolBody:
        if self.kind == "webhook":
            if self.url is None:
                raise ValueError("a webhook tool needs a url")
            if self.name in set(Builtin):
                raise ValueError(f"{self.name} is the name of a built-in tool")
        else:
            if self.name not in set(Builtin):
                choices = ", ".join(b.value for b in Builtin)
                raise ValueError(f"built-in tools are {choices}")
            if self.url is not None or self.secret_value is not None:
                raise ValueError("a built-in tool takes no url or secret")
        if self.secret_value is not None and self.secret_header is None:
            raise ValueError("secret_value needs a secret_header to be sent in")
        return self


class ToolView(BaseModel):
    """A stored tool, as returned: everything but the secret's value."""

    id: str
    chatbot_id: str
    name: str
    kind: ToolKind
    description: str
    parameters: dict[str, Any]
    url: str | None
    timeout_s: float
    secret_header: str | None
    has_secret: bool
    timezone: str | None
    enabled: bool
    created_at: datetime
    updated_at: datetime


class ToolCallView(BaseModel):
    """A tool call the assistant made while answering, as its transcript entry lists it."""

    name: str
    arguments: dict[str, Any] | None  # None: the model's arguments were not JSON
    status: Literal["ok", "error", "timeout", "refused"]
    result: str  # what the model was given back
    duration_ms: float
