"""Tokens a model call cost, from the provider's own usage fields.

OpenAI-compatible servers report ``usage.prompt_tokens`` / ``usage.completion_tokens``, Anthropic
``usage.input_tokens`` / ``usage.output_tokens``; both become one :class:`Usage`. A turn adds up the
usage of its model calls; the consumer stores the sums per conversation, agent, route and day
(consumers/usage.py), where budgets read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens)

    def __bool__(self) -> bool:
        return self.total > 0

    def to_dict(self) -> dict[str, int]:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}

    @classmethod
    def from_dict(cls, data: Any) -> Usage:
        """From our own record, or a provider's usage object (either naming); missing or odd values are 0."""
        if not isinstance(data, dict):
            return cls()
        return cls(
            _int(data.get("input_tokens", data.get("prompt_tokens"))),
            _int(data.get("output_tokens", data.get("completion_tokens"))),
        )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
