"""Declarative flows: steps that collect pydantic-validated data, branch on it, and call a model only
for free text. ``Flow`` is an agent itself, or the behaviour of an ``Agent(..., flow=flow)``."""

from agents.flows.flow import Flow
from agents.flows.instructions import Instructions
from agents.flows.state import FlowConflict, FlowState
from agents.flows.step import END, FlowError, Step

__all__ = ["END", "Flow", "FlowConflict", "FlowError", "FlowState", "Instructions", "Step"]
