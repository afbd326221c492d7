"""``gateway tail [FILTER…]``: a live view of inbound events, outbound messages and dead letters.

The tail reads from its own exclusive, auto-deleted, length-capped queue bound to every
partition key of the events and outbound exchanges and to the dead-letter exchange. It gets
copies: a slow or forgotten tail never holds up or steals a delivery, and when it falls more
than ``--max-length`` items behind, the broker drops its oldest copies, not the gateway's work.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from gateway.core.bus.base import Delivery
from gateway.core.bus.topology import Topology
from gateway.core.errors import ConfigError
from gateway.core.settings import Settings
from gateway.operators import (
    BrokerUnreachable,
    Filter,
    FilterError,
    format_line,
    item_from_delivery,
    open_broker,
    parse_filters,
)
from gateway.server import stop_event

EPILOG = """\
filters (all must match; FIELD=a,b or a repeated FIELD means either):
  dir=in|out|dead  platform=GLOB  kind=GLOB  key=GLOB  agent=GLOB  sender=GLOB  id=GLOB
  stage=GLOB  reason=GLOB     FIELD!=GLOB excludes     globs: * ? [abc], case-sensitive

examples:
  gateway tail                                  everything, one line per item
  gateway tail platform=slack key='slack:T1:*'  one Slack workspace
  gateway tail dir=dead                         only dead letters
  gateway tail kind!=typing --json | jq .text   JSON lines for scripts
  gateway tail --count 1 --for 30               exit after one item (status 1 if none came in 30 s)

Needs AMQP_URL: the in-process bus of `gateway dev` without AMQP_URL is invisible to other processes.
"""


class TailPrinter:
    """Turns tapped deliveries into lines; counts what it printed."""

    def __init__(
        self, topology: Topology, filt: Filter, *, as_json: bool, color: bool, count: int | None, out: TextIO
    ) -> None:
        self._topology = topology
        self._filter = filt
        self._json = as_json
        self._color = color
        self._count = count
        self._out = out
        self.printed = 0
        self.done = asyncio.Event()

    def render(self, delivery: Delivery, seen_at: datetime) -> str | None:
        item = item_from_delivery(delivery, self._topology)
        if not self._filter.matches(item):
            return None
        if self._json:
            return json.dumps(item.to_json(seen_at=seen_at), ensure_ascii=False)
        return format_line(item, color=self._color)

    async def on_delivery(self, delivery: Delivery) -> None:
        if self.done.is_set():
            return
        line = self.render(delivery, datetime.now(UTC))
        if line is None:
            return
        try:
            print(line, file=self._out, flush=True)
        except BrokenPipeError:  # `gateway tail | head -3`: the reader is gone
            _silence_stdout()
            self.done.set()
            return
        self.printed += 1
        if self._count is not None and self.printed >= self._count:
            self.done.set()


def _silence_stdout() -> None:
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _use_color(choice: str, as_json: bool) -> bool:
    if as_json or choice == "never":
        return False
    return choice == "always" or (sys.stdout.isatty() and "NO_COLOR" not in os.environ)


async def _until(stop: asyncio.Event, done: asyncio.Event, seconds: float | None) -> None:
    waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(done.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


async def run_tail(settings: Settings, args: argparse.Namespace) -> int:
    try:
        filt = parse_filters(args.filters)
    except FilterError as exc:
        raise ConfigError(str(exc)) from exc
    stop = stop_event()
    try:
        async with open_broker(settings, "tail") as bus:
            printer = TailPrinter(
                bus.topology,
                filt,
                as_json=args.json,
                color=_use_color(args.color, args.json),
                count=args.count,
                out=sys.stdout,
            )
            sub = await bus.tap(bus.topology.tap_bindings(), printer.on_delivery, max_length=args.max_length)
            what = f" matching {' '.join(args.filters)}" if args.filters else ""
            print(
                f"gateway tail: watching namespace {settings.namespace!r} ({settings.partitions} partitions): "
                f"inbound, outbound and dead letters{what}; Ctrl-C to stop",
                file=sys.stderr,
                flush=True,
            )
            await _until(stop, printer.done, args.duration)
            await sub.close()
    except BrokerUnreachable as exc:
        print(f"gateway tail: {exc}", file=sys.stderr)
        return 1
    if args.count is not None and printer.printed < args.count and not stop.is_set():
        return 1
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "tail",
        help="live view of inbound events, outbound messages and dead letters (needs AMQP_URL)",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("filters", nargs="*", metavar="FILTER", help="FIELD=GLOB or FIELD!=GLOB (see below)")
    p.add_argument("--json", action="store_true", help="one JSON object per line (for jq), no colours")
    p.add_argument("--count", type=_positive_int, metavar="N", help="exit after N matching items")
    p.add_argument(
        "--for",
        dest="duration",
        type=_positive_float,
        metavar="SECONDS",
        help="exit after SECONDS (status 1 when --count N items did not come in time)",
    )
    p.add_argument(
        "--max-length",
        type=_positive_int,
        default=10_000,
        metavar="N",
        help="copies the tail's queue keeps while it falls behind; older ones are dropped (default 10000)",
    )
    p.add_argument(
        "--color", choices=("auto", "always", "never"), default="auto", help="colours (auto: on a terminal only)"
    )
    p.set_defaults(run=run_tail)
