"""The dead letters ``gateway dlq`` holds while it works, and the choice of some of them.

A queue has no random access: :func:`borrow` takes every letter with ``basic.get`` and no ack and
gives back, in order, whatever the caller did not settle (see gateway/commands/dlq.py).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from gateway.core.bus.base import Bus, Delivery
from gateway.core.errors import ConfigError
from gateway.operators import Filter, FilterError, Item, is_filter_word, item_from_delivery, parse_filters

log = structlog.get_logger(__name__)


@dataclass(eq=False)
class Letter:
    delivery: Delivery
    item: Item
    position: int

    @property
    def id(self) -> str:
        return self.item.id or f"#{self.position}"

    def age(self, now: datetime) -> float | None:
        return None if self.item.at is None else (now - self.item.at).total_seconds()

    def to_json(self, now: datetime, *, full: bool = False) -> dict[str, Any]:
        out = self.item.to_json()
        out["age_s"] = round(age, 3) if (age := self.age(now)) is not None else None
        out["replays"] = self.delivery.headers.get("replays", 0)
        out["origin_exchange"] = self.delivery.headers.get("x-origin-exchange")
        out["origin_routing_key"] = self.delivery.headers.get("x-origin-routing-key")
        if full:
            out["headers"] = self.delivery.headers
            try:
                out["body"] = json.loads(self.delivery.body)
            except (ValueError, UnicodeDecodeError):
                out["body"] = self.delivery.body.decode("utf-8", "replace")
        return out


#: A safety stop for a dead-letter queue filling faster than it can be read (the order is then not kept).
BORROW_LIMIT = 1_000_000


async def _take(bus: Bus, letters: list[Letter], limit: int) -> None:
    while len(letters) < limit:
        d = await bus.get(bus.topology.dead_queue)
        if d is None:
            return
        letters.append(Letter(d, item_from_delivery(d, bus.topology), len(letters)))
    log.warning("dlq_limit_reached", limit=limit, note="the dead-letter queue's order is not kept")


@contextlib.asynccontextmanager
async def borrow(bus: Bus, *, limit: int = BORROW_LIMIT) -> AsyncIterator[list[Letter]]:
    """Every letter in the DLQ (until it answers empty), held unacknowledged in queue order.

    On exit, whatever the caller did not settle goes back with a nack, which RabbitMQ (3.10,
    quorum queue) appends at the *back*, in the order given. So letters that failed while these
    were held (now at the head) are taken first, and everything goes back in order: the queue
    keeps its order. Closing the channel instead would return them, but not in order (measured).
    """
    letters: list[Letter] = []
    try:
        await _take(bus, letters, limit)
        yield letters
    finally:
        try:
            await _take(bus, letters, limit)
        except Exception as exc:  # the connection is gone: the broker returns what we held
            log.warning("dlq_top_up_failed", error=repr(exc))
        for letter in letters:
            if not letter.delivery.settled:
                await letter.delivery.requeue()


@dataclass(frozen=True)
class Selection:
    ids: frozenset[str] = frozenset()
    filter: Filter = field(default_factory=Filter)
    everything: bool = False

    def __call__(self, item: Item) -> bool:
        return self.everything or ((not self.ids or item.id in self.ids) and self.filter.matches(item))

    @property
    def empty(self) -> bool:
        return not (self.everything or self.ids or self.filter)


def selection(words: Sequence[str], *, everything: bool = False) -> Selection:
    if everything and words:
        raise ConfigError("--all replays every letter: give IDs or filters, or --all, not both")
    try:
        filt = parse_filters(w for w in words if is_filter_word(w))
    except FilterError as exc:
        raise ConfigError(str(exc)) from exc
    return Selection(frozenset(w for w in words if not is_filter_word(w)), filt, everything)
