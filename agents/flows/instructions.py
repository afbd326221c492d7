"""Instructions with must / must-not / should, rendered into the system prompt of a flow's model steps.

    Instructions(
        "You take support tickets for Acme.",
        must=["ask for one thing at a time"],
        must_not=["promise a refund"],
        should=["thank the customer"],
    )

renders as the role, then a ``You MUST:`` / ``You MUST NOT:`` / ``You SHOULD:`` list each (RFC 2119's words,
which models follow as they read them). Empty lists are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Instructions:
    role: str = ""
    must: Sequence[str] = ()
    must_not: Sequence[str] = ()
    should: Sequence[str] = ()

    def render(self) -> str:
        parts = [self.role.strip()] if self.role.strip() else []
        for title, rules in (("You MUST:", self.must), ("You MUST NOT:", self.must_not), ("You SHOULD:", self.should)):
            if rules:
                parts.append("\n".join([title, *(f"- {r.strip()}" for r in rules)]))
        return "\n\n".join(parts)

    @classmethod
    def of(cls, value: Instructions | str | None) -> Instructions:
        if isinstance(value, Instructions):
            return value
        return cls(role=value or "")
