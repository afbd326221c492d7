"""``gateway dlq``: list, show, replay and purge dead letters (docs/operations.md says how to use it safely).

gateway dlq list [FILTER…] [--json] [--limit N]
gateway dlq show ID [--json]
gateway dlq replay (ID… | FILTER… | --all) [--allow-reorder] [--dry-run]
gateway dlq purge [ID… | FILTER…] [--yes]

A queue has no random access: every command takes all letters with ``basic.get`` and no ack
(holding them, so nobody else sees them meanwhile), acks only what it replayed (after the broker
confirmed the republish) or purged, and gives the rest back with ``basic.nack(requeue)`` in the
order it took them, after also taking whatever failed meanwhile: a quorum queue appends what is
given back at its back, so the queue keeps its order.

Replay republishes the unchanged body and message id to where it came from (``dispatch``: the
events exchange at the conversation's partition; ``outbound``: the outbound exchange), so the turn
and sent markers make it never post twice. Letters go in the order they failed; one whose
conversation has an older letter staying in the queue is held back unless ``--allow-reorder``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import structlog

from gateway.bus.base import Bus, Delivery
from gateway.bus.topology import Topology
from gateway.errors import ConfigError, PublishError
from gateway.operators import (
    BrokerUnreachable,
    Filter,
    FilterError,
    Item,
    ask,
    excerpt,
    format_age,
    is_filter_word,
    item_from_delivery,
    open_broker,
    parse_filters,
    sigterm_cancels,
    table,
)
from gateway.settings import Settings

log = structlog.get_logger(__name__)


class ReplayRefused(ValueError):
    """This letter cannot go back through dispatch; the message says why."""


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


# ---------------------------------------------------------------- selection and replay plan


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


# ---------------------------------------------------------------- output


def list_lines(letters: Sequence[Letter], now: datetime) -> list[str]:
    rows = [["ID", "AGE", "STAGE", "REASON", "ATTEMPTS", "PLATFORM", "CONVERSATION", "ERROR / TEXT"]]
    for letter in letters:
        i = letter.item
        rows.append(
            [
                letter.id,
                format_age(letter.age(now)),
                i.stage or "-",
                i.reason or "-",
                "-" if i.attempts is None else str(i.attempts),
                i.platform or "-",
                i.key or "-",
                excerpt(i.error or i.text, 70),
            ]
        )
    return table(rows)


def show_lines(letter: Letter, now: datetime) -> list[str]:
    data = letter.to_json(now, full=True)
    fields = [
        ("id", letter.id),
        ("stage", data["stage"]),
        ("reason", data["reason"]),
        ("attempts", data["attempts"]),
        ("failed at", f"{data['time']} ({format_age(data['age_s'])} ago)"),
        ("origin", f"{data['origin_exchange']} key {data['origin_routing_key']}"),
        ("replays", data["replays"]),
        ("platform", data["platform"]),
        ("kind", data["kind"]),
        ("conversation", data["key"]),
        ("agent", data["agent"]),
        ("sender", data["sender"]),
        ("event id", data["event_id"]),
        ("text", data["text"]),
    ]
    lines = [f"{name + ':':<14}{'-' if value is None else value}" for name, value in fields]
    lines += ["error:", *(f"  {line}" for line in str(data["error"] or "-").splitlines())]
    lines += ["body:", *(f"  {line}" for line in _dump(data["body"], indent=2).splitlines())]
    return lines


def _dump(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent, default=str)


def _step_line(verb: str, step: Step, extra: str) -> str:
    i = step.letter.item
    return f"{verb:<10} {step.letter.id}  {i.stage or '-'}/{i.reason or '-'}  {i.key or '-'}  {extra}".rstrip()


# ---------------------------------------------------------------- commands


async def _list(bus: Bus, args: argparse.Namespace) -> int:
    chosen = selection(args.words)
    now = datetime.now(UTC)
    async with borrow(bus) as letters:
        shown = [x for x in letters if chosen(x.item)]
        for_print = shown[: args.limit] if args.limit else shown
        if args.json:
            for letter in for_print:
                print(_dump(letter.to_json(now)))
            return 0
        if not letters:
            print(f"the dead-letter queue {bus.topology.dead_queue} is empty")
            return 0
        if for_print:
            print("\n".join(list_lines(for_print, now)))
        oldest = max((a for x in shown if (a := x.age(now)) is not None), default=None)
        more = f", showing {len(for_print)}" if len(for_print) < len(shown) else ""
        print(
            f"{len(shown)} of {len(letters)} dead letters in {bus.topology.dead_queue} match{more}; "
            f"oldest {format_age(oldest)}"
        )
    return 0


async def _show(bus: Bus, args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    async with borrow(bus) as letters:
        found = [x for x in letters if x.item.id == args.id]
        for letter in found:
            print(_dump(letter.to_json(now, full=True)) if args.json else "\n".join(show_lines(letter, now)))
    if not found:
        print(f"no dead letter {args.id!r} in {bus.topology.dead_queue} (see `gateway dlq list`)", file=sys.stderr)
        return 1
    return 0


def _where(step: Step) -> str:
    if step.target is None:
        return step.note + (" (add it, or --allow-reorder)" if step.action == "hold" else "")
    return f"-> {step.target[0]} key {step.target[1]}"


async def _replay(bus: Bus, args: argparse.Namespace) -> int:
    chosen = selection(args.words, everything=args.all)
    if chosen.empty:
        raise ConfigError("say what to replay: IDs (from `gateway dlq list`), FILTERs, or --all")
    async with borrow(bus) as letters:
        steps = plan_replay(letters, chosen, bus.topology, allow_reorder=args.allow_reorder)
        result = ReplayResult([], []) if args.dry_run else await execute(bus, steps)
    done = {id(s) for s in result.replayed}
    failed = {id(s): error for s, error in result.failed}
    verbs = {"replay": "would replay", "hold": "held back", "refuse": "refused"}
    for step in (s for s in steps if s.action != "keep"):
        if id(step) in failed:
            print(_step_line("failed", step, failed[id(step)]))
        else:
            print(_step_line("replayed" if id(step) in done else verbs[step.action], step, _where(step)))
    missing = sorted(chosen.ids - {x.item.id for x in letters})
    for m in missing:
        print(f"not found  {m}")
    selected = sum(1 for s in steps if s.action != "keep")
    queue = bus.topology.dead_queue
    if args.dry_run or (not selected and not missing):
        print(
            f"{'dry run: nothing changed' if args.dry_run else 'nothing to replay'} ({len(letters)} letters in {queue})"
        )
        return 0
    kept = len(letters) - len(result.replayed)
    print(f"replayed {len(result.replayed)} of {selected} selected; {kept} letters stay in {queue}")
    return 0 if len(result.replayed) == selected and not missing else 1


async def _purge(bus: Bus, args: argparse.Namespace) -> int:
    chosen = selection(args.words, everything=not args.words)
    async with borrow(bus) as letters:
        doomed = [x for x in letters if chosen(x.item)]
        if not doomed:
            print("nothing to purge")
            return 0
        reasons = ", ".join(f"{r}: {n}" for r, n in Counter(x.item.reason or "?" for x in doomed).most_common())
        question = f"Delete {len(doomed)} dead letter(s) from {bus.topology.dead_queue} ({reasons})? [y/N] "
        if not args.yes and (await ask(question)).strip().lower() not in ("y", "yes"):
            print("nothing deleted (pass --yes to purge without asking)")
            return 1
        for letter in doomed:
            await letter.delivery.ack()
    print(f"purged {len(doomed)} dead letter(s); {len(letters) - len(doomed)} stay")
    return 0


_ACTIONS = {"list": _list, "show": _show, "replay": _replay, "purge": _purge}


async def run_dlq(settings: Settings, args: argparse.Namespace) -> int:
    with sigterm_cancels() as terminated:  # unwind like Ctrl-C, so held letters go back in order
        try:
            async with open_broker(settings, "dlq") as bus:
                return await _ACTIONS[args.action](bus, args)
        except BrokerUnreachable as exc:
            print(f"gateway dlq: {exc}", file=sys.stderr)
            return 1
        except asyncio.CancelledError:
            if not terminated.is_set():
                raise
            print("gateway dlq: stopped by SIGTERM; the letters it held are back in the queue", file=sys.stderr)
            return 143


def _words(p: argparse.ArgumentParser) -> None:
    p.add_argument("words", nargs="*", metavar="ID|FILTER", help="message ids from `list`, or FIELD=GLOB filters")
    p.epilog = (
        "FILTER: FIELD=GLOB or FIELD!=GLOB, all must match; fields: stage reason key platform kind agent sender id "
        "(globs * ? [abc]; see `gateway tail --help`). Example: reason=turn_failed key='slack:T0123:*'"
    )


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "dlq",
        help="list | show | replay | purge dead letters (needs AMQP_URL)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = actions.add_parser("list", help="dead letters with reason, attempts and age")
    _words(ls)
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.add_argument("--limit", type=int, default=0, metavar="N", help="print the first N only (all are read)")
    sh = actions.add_parser("show", help="one dead letter in full: headers, error, body")
    sh.add_argument("id")
    sh.add_argument("--json", action="store_true")
    rp = actions.add_parser("replay", help="republish dead letters through normal dispatch")
    _words(rp)
    rp.add_argument("--all", action="store_true", help="every letter in the queue")
    rp.add_argument(
        "--allow-reorder",
        action="store_true",
        help="replay a letter even when an older letter of its conversation stays in the queue",
    )
    rp.add_argument("--dry-run", action="store_true", help="say what would happen; change nothing")
    pg = actions.add_parser("purge", help="delete dead letters (all, or those selected) after confirmation")
    _words(pg)
    pg.add_argument("--yes", action="store_true", help="do not ask")
    p.set_defaults(run=run_dlq)
