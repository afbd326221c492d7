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
import sys
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from gateway.commands.dlq_letters import borrow, selection
from gateway.commands.dlq_render import dump_json, list_lines, replay_lines, show_lines
from gateway.commands.dlq_replay import ReplayResult, execute, plan_replay
from gateway.commands.parsers import documented_parser
from gateway.core.bus.base import Bus
from gateway.core.errors import ConfigError
from gateway.core.settings import Settings
from gateway.operators import BrokerUnreachable, ask, format_age, open_broker, sigterm_cancels


async def _list(bus: Bus, args: argparse.Namespace) -> int:
    chosen = selection(args.words)
    now = datetime.now(UTC)
    async with borrow(bus) as letters:
        shown = [x for x in letters if chosen(x.item)]
        for_print = shown[: args.limit] if args.limit else shown
        if args.json:
            for letter in for_print:
                print(dump_json(letter.to_json(now)))
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
            print(dump_json(letter.to_json(now, full=True)) if args.json else "\n".join(show_lines(letter, now)))
    if not found:
        print(f"no dead letter {args.id!r} in {bus.topology.dead_queue} (see `gateway dlq list`)", file=sys.stderr)
        return 1
    return 0


async def _replay(bus: Bus, args: argparse.Namespace) -> int:
    chosen = selection(args.words, everything=args.all)
    if chosen.empty:
        raise ConfigError("say what to replay: IDs (from `gateway dlq list`), FILTERs, or --all")
    async with borrow(bus) as letters:
        steps = plan_replay(letters, chosen, bus.topology, allow_reorder=args.allow_reorder)
        result = ReplayResult([], []) if args.dry_run else await execute(bus, steps)
    for line in replay_lines(steps, result):
        print(line)
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


ACTION_DESCRIPTIONS = {
    "list": "List the dead letters (all, or those the FILTERs or IDs select): id, age, stage, reason, attempts, "
    "conversation and text, then how many matched and the oldest age. Reads every letter and gives each back in "
    "order; nothing is changed.",
    "show": "Print one dead letter in full: where it failed and why (error, attempts, stage), its headers and its "
    "body. Nothing is changed; exit status 1 when ID is not in the queue.",
    "replay": "Republish the selected dead letters to where they failed (dispatch or outbound), oldest first; the "
    "turn and sent markers keep anything from being posted twice. A letter with an older letter of its "
    "conversation left in the queue is held back unless --allow-reorder. --dry-run says what would happen.",
    "purge": "Delete dead letters: all, or those the IDs or FILTERs select, after asking (or with --yes). The "
    "others stay in the queue, in order. `gateway purge` deletes the whole namespace instead.",
}


def _words(p: argparse.ArgumentParser) -> None:
    p.add_argument("words", nargs="*", metavar="ID|FILTER", help="message ids from `list`, or FIELD=GLOB filters")
    p.epilog = (
        "FILTER: FIELD=GLOB or FIELD!=GLOB, all must match; fields: stage reason key platform kind agent sender id "
        "(globs * ? [abc]; see `gateway tail --help`). Example: reason=turn_failed key='slack:T0123:*'"
    )


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = documented_parser(sub, "dlq", help="list | show | replay | purge dead letters (needs AMQP_URL)", doc=__doc__)
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
    for action, description in ACTION_DESCRIPTIONS.items():
        actions.choices[action].description = description
    p.set_defaults(run=run_dlq)
