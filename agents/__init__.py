"""Agents: the contract (three hooks), declarative LLM agents with tools, flows, and the built-ins."""

from agents.agent import HANDOFF_TOOL, Agent, AgentError
from agents.context import SessionContext, Turn, TurnContext
from agents.echo import EchoAgent
from agents.flows import END, Flow, Instructions, Step
from agents.memory import Memory
from agents.models import ChatModel, ModelTurn, OpenAIChat, ToolCall
from agents.tools import Tool, make_tool, tool

__all__ = [
    "END",
    "HANDOFF_TOOL",
    "Agent",
    "AgentError",
    "ChatModel",
    "EchoAgent",
    "Flow",
    "Instructions",
    "Memory",
    "ModelTurn",
    "OpenAIChat",
    "SessionContext",
    "Step",
    "Tool",
    "ToolCall",
    "Turn",
    "TurnContext",
    "make_tool",
    "tool",
]
