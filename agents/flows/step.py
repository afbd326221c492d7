"""A flow's step: what it collects, what it asks, where it goes next.

    Step("order", collect=["order_number"], prompt="What is your order number?")
    Step("problem", collect=Problem, prompt="What went wrong?", free_text=True,
         branch=lambda data: "damaged" if data["category"] == "damaged" else "contact")
    Step("done", prompt="Thanks! Ticket for {order_number} is open.")      # says this, then goes on

``collect`` names fields of the flow's ``schema`` (validated by it, its field validators included) or is
a pydantic model of its own. A step without ``collect`` only says its ``prompt``. ``prompt`` is a string
formatted with the data collected so far (``{order_number}``), or a function of that data. After a step
the flow goes to ``branch(data)`` when given (no model call: plain Python on the collected data), else
``next``, else the following step; :data:`END` (or running past the last step) finishes the flow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import BaseModel

END = "end"

Prompt = str | Callable[[Mapping[str, Any]], str]


class FlowError(Exception):
    """A flow is defined wrong (an unknown step or field), or a branch named a step that does not exist."""


@dataclass(frozen=True)
class Step:
    id: str
    collect: type[BaseModel] | Sequence[str] | None = None
    prompt: Prompt = ""
    #: The model may fill this step's fields from what the user wrote (a ``fill_slots`` tool call).
    free_text: bool = False
    next: str | None = None
    branch: Callable[[Mapping[str, Any]], str] | None = None
    #: Resolved by the flow: the model that validates the fields, and their names.
    model: type[BaseModel] | None = field(default=None, compare=False)
    fields: tuple[str, ...] = field(default=(), compare=False)

    def resolved(self, schema: type[BaseModel] | None) -> Step:
        """This step with ``model`` and ``fields`` filled in from ``collect`` and the flow's schema."""
        if self.collect is None:
            return self
        if isinstance(self.collect, type) and issubclass(self.collect, BaseModel):
            return replace(self, model=self.collect, fields=tuple(self.collect.model_fields))
        names = tuple(self.collect)
        if schema is None:
            raise FlowError(f"step {self.id!r} collects {list(names)} but the flow has no schema=")
        unknown = [n for n in names if n not in schema.model_fields]
        if unknown:
            raise FlowError(f"step {self.id!r}: {schema.__name__} has no field {', '.join(unknown)}")
        return replace(self, model=schema, fields=names)

    def text(self, data: Mapping[str, Any]) -> str:
        """The prompt, with the collected data filled in (a missing name stays as written)."""
        if callable(self.prompt):
            return self.prompt(data)
        return self.prompt.format_map(_Keep(data))


class _Keep(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"
