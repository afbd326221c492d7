"""Tools from plain functions: JSON schema from type hints and the docstring.

    @agent.tool
    async def lookup_order(order_id: str, include_items: bool = False) -> dict:
        '''Find an order by id.

        Args:
            order_id: The order number, like "A-1042".
            include_items: Also return the line items.
        '''

The first docstring paragraph describes the tool; ``Args:`` lines describe the
parameters. A parameter annotated with :class:`~agents.context.TurnContext`
receives the turn's context and is hidden from the model. Arguments are
validated (pydantic) before the call; invalid arguments, exceptions and
timeouts go back to the model as an error message instead of crashing the turn.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from agents.context import TurnContext

_ARG = re.compile(r"^(\w+)(?:\s*\([^)]*\))?\s*:\s*(.*)$")
_ARG_HEADERS = ("Args:", "Arguments:", "Parameters:")


def _parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """The summary paragraph and the Google-style ``Args:`` descriptions."""
    if not doc:
        return "", {}
    text = inspect.cleandoc(doc)
    summary = text.split("\n\n", 1)[0].replace("\n", " ").strip()
    params: dict[str, str] = {}
    in_args, current, arg_indent = False, "", 0
    for line in text.splitlines():
        stripped = line.strip()
        if stripped in _ARG_HEADERS:
            in_args = True
            continue
        if not in_args or not stripped:
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            break  # the next section
        match = _ARG.match(stripped)
        if match and (not current or indent <= arg_indent):
            current, arg_indent = match.group(1), indent
            params[current] = match.group(2)
        elif current:
            params[current] = f"{params[current]} {stripped}".strip()
    return summary, params


@dataclass
class Tool:
    name: str
    description: str
    fn: Callable[..., Any]
    args_model: type[BaseModel]
    context_param: str | None = None
    timeout: float = 30.0
    schema: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        params = self.args_model.model_json_schema()
        params.pop("title", None)
        for prop in params.get("properties", {}).values():
            prop.pop("title", None)
        self.schema = {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": params},
        }

    async def invoke(self, raw_arguments: str | dict[str, Any], ctx: TurnContext | None) -> str:
        """Run the tool; the result (or an error message) as text for the model."""
        try:
            data = json.loads(raw_arguments or "{}") if isinstance(raw_arguments, str) else raw_arguments
            args = self.args_model.model_validate(data)
        except (ValueError, ValidationError) as exc:
            return f"error: invalid arguments for {self.name}: {exc}"
        kwargs = dict(args)
        if self.context_param:
            kwargs[self.context_param] = ctx
        try:
            if inspect.iscoroutinefunction(self.fn):
                result = await asyncio.wait_for(self.fn(**kwargs), self.timeout)
            else:
                result = await asyncio.wait_for(asyncio.to_thread(self.fn, **kwargs), self.timeout)
        except TimeoutError:
            return f"error: {self.name} timed out after {self.timeout} s"
        except Exception as exc:
            return f"error: {self.name} failed: {type(exc).__name__}: {exc}"
        return _as_text(result)


def _as_text(result: Any) -> str:
    if result is None:
        return "ok"
    if isinstance(result, str):
        return result
    if isinstance(result, BaseModel):
        return result.model_dump_json()
    try:
        return json.dumps(result, default=str)
    except (TypeError, ValueError):
        return str(result)


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float = 30.0,
) -> Any:
    """Make a :class:`Tool` from a function (usable bare or with options)."""

    def build(f: Callable[..., Any]) -> Tool:
        return make_tool(f, name=name, description=description, timeout=timeout)

    return build(fn) if fn is not None else build


def make_tool(
    fn: Callable[..., Any], *, name: str | None = None, description: str | None = None, timeout: float = 30.0
) -> Tool:
    summary, param_docs = _parse_docstring(fn.__doc__)
    hints = get_type_hints(fn)
    fields: dict[str, Any] = {}
    context_param = None
    for pname, param in inspect.signature(fn).parameters.items():
        annotation = hints.get(pname, Any)
        if annotation is TurnContext or (inspect.isclass(annotation) and issubclass(annotation, TurnContext)):
            context_param = pname
            continue
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[pname] = (annotation, Field(default, description=param_docs.get(pname)))
    model = create_model(f"{fn.__name__}_args", __config__=ConfigDict(extra="forbid"), **fields)
    return Tool(
        name=name or fn.__name__,
        description=description or summary or fn.__name__.replace("_", " "),
        fn=fn,
        args_model=model,
        context_param=context_param,
        timeout=timeout,
    )
