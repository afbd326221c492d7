"""Replaying dead letters: the plan (what goes back, what is held back to keep a conversation's
order, what is refused) and its execution (republish confirmed, then ack)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from gateway.commands.dlq_letters import Letter
from gateway.core.bus.base import Bus
from gateway.core.bus.topology import Topology
from gateway.core.errors import PublishError
from gateway.operators import Item


class ReplayRefused(ValueError):
    """This letter cannot go back through dispatch; the message says why."""


Action = Literal["replay", "hold", "refuse", "keep"]


@dataclass(frozen=True)
class Step:
    letter: Letter
    action: Action
    target: tuple[str, str] | None = None
    note: str = ""


def replay_target(headers: dict[str, Any], item: Item, topology: Topology) -> tuple[str, str]:
    """(exchange, routing key): where the letter came from, in this namespace."""
    stage = headers.get("x-stage")
    exchange = {"dispatch": topology.events_exchange, "outbound": topology.outbound_exchange}.get(str(stage))
    if exchange is None:
        raise ReplayRefused(f"stage {stage!r} is neither dispatch nor outbound")
    origin = headers.get("x-origin-exchange")
    if origin and origin != exchange:
        raise ReplayRefused(f"it came from exchange {origin!r}, not this namespace's {exchange!r}")
    if item.key:
        # The original routing key is the conversation's partition; recomputed in case P changed since.
        return exchange, str(topology.partition_of(item.key))
    key = headers.get("x-origin-routing-key")
    if isinstance(key, str) and key.isdigit() and int(key) < topology.partitions:
        return exchange, key
    raise ReplayRefused("it has no conversation key and no usable origin routing key")


def _failure_order(letter: Letter) -> tuple[float, int]:
    """When it failed (one consumer stamps one conversation's letters in turn order), then queue position."""
    return (letter.item.at.timestamp() if letter.item.at else 0.0, letter.position)


def plan_replay(
    letters: Sequence[Letter], chosen: Callable[[Item], bool], topology: Topology, *, allow_reorder: bool = False
) -> list[Step]:
    """Decide, in the order they failed, what to replay, hold back (order) or refuse; the rest is kept."""
    older_staying: dict[str, str] = {}  # conversation key -> id of an older letter that stays
    steps: list[Step] = []
    for letter in sorted(letters, key=_failure_order):
        key = letter.item.key
        if not chosen(letter.item):
            step = Step(letter, "keep")
        elif key and key in older_staying and not allow_reorder:
            note = f"older letter {older_staying[key]} of this conversation stays in the DLQ"
            step = Step(letter, "hold", note=note)
        else:
            try:
                step = Step(letter, "replay", replay_target(letter.delivery.headers, letter.item, topology))
            except ReplayRefused as exc:
                step = Step(letter, "refuse", note=str(exc))
        steps.append(step)
        if step.action != "replay" and key:
            older_staying.setdefault(key, letter.id)
    return steps


def replay_headers(headers: dict[str, Any]) -> dict[str, Any]:
    """The original headers (the ``x-`` ones were added by dead-lettering), plus a replay count."""
    out = {k: v for k, v in headers.items() if not k.startswith("x-")}
    previous = out.get("replays")
    out["replays"] = (previous if isinstance(previous, int) else 0) + 1
    return out


@dataclass
class ReplayResult:
    replayed: list[Step]
    failed: list[tuple[Step, str]]


async def execute(bus: Bus, steps: Sequence[Step]) -> ReplayResult:
    """Republish (confirmed), then ack; after a failed publish, stop and leave the rest in the DLQ."""
    result = ReplayResult([], [])
    for step in steps:
        if step.action != "replay" or step.target is None:
            continue
        if result.failed:
            result.failed.append((step, "not attempted after an earlier failure"))
            continue
        d = step.letter.delivery
        exchange, key = step.target
        try:
            await bus.publish(exchange, key, d.body, headers=replay_headers(d.headers), message_id=d.message_id)
        except PublishError as exc:
            result.failed.append((step, str(exc)))
            continue
        await d.ack()
        result.replayed.append(step)
    return result
