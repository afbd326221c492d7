"""Slots: what a step's fields get from the user's text, and pydantic's verdict on each value.

Deterministic, no model: a field whose schema has a ``pattern`` takes the first match in the text (the
anchors dropped, any case), a number field the first number; a field with a fixed set of values
(``Literal``, ``Enum``) takes the one value the text names as a word; and, once the step's question was
asked, when nothing else was found, a single field still missing takes the whole text (unless the step
leaves free text to the model). Every value is then validated by the step's
model, field validators included (pydantic's ``validate_assignment``), so a bad value comes back with the
validation message, which the flow sends as its re-ask.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import to_jsonable_python


@dataclass
class Filled:
    #: Validated values, as JSON-ready data (what the flow state keeps).
    values: dict[str, Any] = field(default_factory=dict)
    #: A message for the user per field whose value was refused.
    errors: dict[str, str] = field(default_factory=dict)


@functools.cache
def json_schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


def extract(model: type[BaseModel], names: Iterable[str], text: str, *, whole_text: bool) -> dict[str, str]:
    """Candidate values for ``names`` found in ``text`` (not validated yet)."""
    schema = json_schema(model)
    props, defs = schema.get("properties", {}), schema.get("$defs", {})
    found: dict[str, str] = {}
    rest: list[str] = []
    for name in names:
        pattern, choices = _facets(props.get(name, {}), defs)
        value = _search(pattern, text) if pattern else _choice(choices, text) if choices else None
        if value is None:
            rest.append(name)
        else:
            found[name] = value
    if whole_text and not found and len(rest) == 1 and text.strip():
        found[rest[0]] = text.strip()
    return found


def validate(model: type[BaseModel], data: Mapping[str, Any], candidates: Mapping[str, Any]) -> Filled:
    """Each candidate validated on its own against ``model`` (with the data collected so far around it)."""
    known = {k: v for k, v in data.items() if k in model.model_fields}
    instance = model.model_construct(**known)
    out = Filled()
    for name, value in candidates.items():
        if name not in model.model_fields or value is None:
            continue
        try:
            model.__pydantic_validator__.validate_assignment(instance, name, value)
        except ValidationError as exc:
            out.errors[name] = message(model, name, exc)
            continue
        out.values[name] = to_jsonable_python(getattr(instance, name))
    return out


def label(model: type[BaseModel], name: str) -> str:
    """How a field is called to the user: its description, else its name in words."""
    info = model.model_fields.get(name)
    return (info.description if info is not None and info.description else name.replace("_", " ")).strip()


def message(model: type[BaseModel], name: str, exc: ValidationError) -> str:
    """The validation error in words for the user: a validator's own message as it is."""
    err = exc.errors()[0]
    if err["type"] in ("value_error", "assertion_error"):
        return str(err.get("ctx", {}).get("error", err["msg"]))
    if err["type"] == "string_pattern_mismatch":
        return f"That is not a valid {label(model, name)}."
    msg = str(err["msg"])
    return f"That is not a valid {label(model, name)}: {msg[:1].lower()}{msg[1:]}."


def _facets(prop: Mapping[str, Any], defs: Mapping[str, Any]) -> tuple[str | None, list[str]]:
    """The pattern or the choices of a field's schema (through a ``$ref`` or an ``Optional``)."""
    ref = prop.get("$ref")
    if isinstance(ref, str):
        prop = defs.get(ref.rsplit("/", 1)[-1], {})
    for option in prop.get("anyOf", []):
        pattern, choices = _facets(option, defs)
        if pattern or choices:
            return pattern, choices
    pattern = prop.get("pattern", _NUMBERS.get(str(prop.get("type"))))
    choices = [c for c in prop.get("enum", [prop["const"]] if "const" in prop else []) if isinstance(c, str)]
    return (pattern if isinstance(pattern, str) else None), choices


_NUMBERS = {"integer": r"-?\d+", "number": r"-?\d+(?:\.\d+)?"}


def _search(pattern: str, text: str) -> str | None:
    unanchored = pattern.removeprefix("^").removesuffix("$")
    try:
        match = re.search(unanchored, text, re.IGNORECASE)
    except re.error:
        return None
    return match.group(0) if match and match.group(0) else None


def _choice(choices: list[str], text: str) -> str | None:
    named = [c for c in choices if re.search(rf"\b{re.escape(c)}\b", text, re.IGNORECASE)]
    return named[0] if len(named) == 1 else None
