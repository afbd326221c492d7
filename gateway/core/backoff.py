"""Exponential backoff with full jitter and a cap, for reconnecting to the broker and Redis.

Many gateways retrying on one fixed interval arrive together and keep a struggling broker busy (a
gateway whose vhost was deleted used to reconnect about once a second, forever). "Equal jitter"
(half the exponential bound, plus a uniform random part of the other half) spreads them out and
never retries in a tight loop.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    base: float = 0.5
    cap: float = 30.0
    factor: float = 2.0
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def bound(self) -> float:
        """The upper bound of the next delay (before jitter)."""
        return min(self.cap, self.base * self.factor ** max(0, self.failures - 1))

    def next_delay(self) -> float:
        """Count one more failure and return how long to wait before the next attempt."""
        self.failures += 1
        bound = self.bound()
        return bound / 2 + self.rng.uniform(0, bound / 2)

    def reset(self) -> None:
        self.failures = 0
