"""Function calling by voice: a session's tools (built-ins and the chatbot's webhooks), how a
call runs, and the answer loop that runs the calls the model makes."""

from parley_llm.tools.base import Tool, ToolCallRecord, ToolEffect, ToolOutcome
from parley_llm.tools.builtin import KnowledgeSearch, builtin_tool
from parley_llm.tools.loading import load_toolbox
from parley_llm.tools.loop import FILLER, stream_answer
from parley_llm.tools.toolbox import Toolbox, ToolTurn
from parley_llm.tools.webhook import WebhookTool

__all__ = [
    "FILLER",
    "KnowledgeSearch",
    "Tool",
    "ToolCallRecord",
    "ToolEffect",
    "ToolOutcome",
    "ToolTurn",
    "Toolbox",
    "WebhookTool",
    "builtin_tool",
    "load_toolbox",
    "stream_answer",
]
