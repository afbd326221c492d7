"""Agents: the contract (three hooks), declarative LLM agents with tools, and the built-ins."""

from agents.agent import HANDOFF_TOOL, Agent, AgentError
from agents.context import SessionContext, Turn, TurnContext
from agents.echo import EchoAgent
from agents.memory import Memory
from agents.models import ChatModel, ModelTurn, OpenAIChat, ToolCall
from agents.tools import Tool, make_tool, tool

__all__ = [
    "HANDOFF_TOOL",
    "Agent",
    "AgentError",
    "ChatModel",
    "EchoAgent",
    "Memory",
    "ModelTurn",
    "OpenAIChat",
    "SessionContext",
    "Tool",
    "ToolCall",
    "Turn",
    "TurnContext",
    "make_tool",
    "tool",
]
