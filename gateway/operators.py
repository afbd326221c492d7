"""What operators see: one normalized :class:`Item` per message, filters over items, and how they print.

``gateway tail``, ``gateway dlq`` and ``gateway status`` read raw deliveries (inbound events,
outbound messages, dead letters) and turn each into an :class:`Item` without trusting the body:
an undecodable message still shows, with whatever its headers say.

Filters are ``FIELD=GLOB`` words (``platform=slack kind=message key=slack:T1:* agent=echo``):

- globs use shell rules (``*``, ``?``, ``[abc]``), case-sensitive, against the whole value;
- ``FIELD=a,b`` and a repeated ``FIELD=`` mean either; different fields must all match;
- ``FIELD!=GLOB`` excludes (``kind!=typing``); an item without that field is never excluded;
- fields: ``dir`` (in, out, dead), ``platform``, ``kind`` (event kind, or the outbound action),
  ``key`` (conversation key), ``agent``, ``sender``, ``id``, ``stage`` and ``reason`` (dead letters).
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import re
import signal
import sys
import threading
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from gateway.core.bus.base import Bus, Delivery
from gateway.core.bus.topology import Topology
from gateway.core.errors import ConfigError, GatewayError
from gateway.core.settings import Settings

Direction = Literal["in", "out", "dead"]

#: Filter names and the :class:`Item` attribute each reads.
FIELDS: Mapping[str, str] = {
    "dir": "direction",
    "direction": "direction",
    "platform": "platform",
    "kind": "kind",
    "key": "key",
    "agent": "agent",
    "sender": "sender",
    "id": "id",
    "stage": "stage",
    "reason": "reason",
}


class FilterError(ValueError):
    """A filter word that cannot be understood; the message says what is accepted."""


@dataclass(frozen=True, slots=True)
class Item:
    direction: Direction
    id: str
    platform: str | None
    kind: str | None
    key: str | None
    agent: str | None
    sender: str | None
    text: str
    #: When it happened: an event's ``received_at``, an outbound ``created_at``, a dead letter's failure.
    at: datetime | None
    event_id: str | None
    partition: int | None
    stage: str | None = None
    reason: str | None = None
    error: str | None = None
    attempts: int | None = None
    traceback: str | None = None

    def value(self, field: str) -> str | None:
        v = getattr(self, FIELDS[field])
        return None if v is None else str(v)

    def to_json(self, *, seen_at: datetime | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "direction": self.direction,
            "id": self.id,
            "time": self.at.isoformat() if self.at else None,
            "platform": self.platform,
            "kind": self.kind,
            "key": self.key,
            "agent": self.agent,
            "sender": self.sender,
            "text": self.text,
            "event_id": self.event_id,
            "partition": self.partition,
        }
        if self.direction == "dead":
            out.update(
                stage=self.stage, reason=self.reason, error=self.error, attempts=self.attempts, traceback=self.traceback
            )
        if seen_at is not None:
            out["seen_at"] = seen_at.isoformat()
        return out


# ---------------------------------------------------------------- decoding


def _json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _str(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def _partition(routing_key: object) -> int | None:
    return int(routing_key) if isinstance(routing_key, str) and routing_key.isdigit() else None


def _direction(d: Delivery, topology: Topology) -> Direction:
    if d.exchange == topology.events_exchange:
        return "in"
    if d.exchange == topology.outbound_exchange:
        return "out"
    return "dead"


def agent_of_outbound(message_id: str | None) -> str | None:
    """Outbound ids are ``{message ref or event id}:{agent}:{n}`` (agents/context.py); best effort."""
    parts = (message_id or "").rsplit(":", 2)
    return (parts[1] or None) if len(parts) == 3 and parts[2].isdigit() else None


def item_from_delivery(d: Delivery, topology: Topology) -> Item:
    direction = _direction(d, topology)
    h, body = d.headers, _json(d.body)
    stage = _str(h.get("x-stage"))
    outbound = direction == "out" or stage == "outbound" or (stage is None and "to" in body)
    fields = _outbound_fields(h, body, d.message_id) if outbound else _event_fields(h, body)
    if direction == "dead":
        fields["at"] = parse_time(h.get("x-failed-at")) or fields["at"]
        attempts = h.get("x-attempts")
        fields.update(
            stage=stage,
            reason=_str(h.get("x-reason")),
            error=_str(h.get("x-error")),
            traceback=_str(h.get("x-traceback")),
            attempts=attempts if isinstance(attempts, int) else None,
            partition=_partition(h.get("x-origin-routing-key")),
        )
    else:
        fields["partition"] = _partition(d.routing_key)
    if not body and d.body:
        fields["text"] = f"<undecodable body, {len(d.body)} bytes>"
    return Item(direction=direction, id=d.message_id or "", **fields)


def _event_fields(h: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    raw = body.get("sender")
    sender = raw if isinstance(raw, dict) else {}
    return {
        "platform": _str(h.get("platform")) or _str(body.get("platform")),
        "kind": _str(h.get("kind")) or _str(body.get("kind")),
        "key": _str(h.get("conversation_key")) or _str(body.get("conversation_key")),
        "agent": _str(h.get("agent")) or _str(body.get("agent")),
        "sender": _str(sender.get("name")) or _str(sender.get("id")),
        "text": str(body.get("text") or ""),
        "at": parse_time(body.get("received_at")),
        "event_id": _str(body.get("id")),
    }


def _outbound_fields(h: Mapping[str, Any], body: Mapping[str, Any], message_id: str | None) -> dict[str, Any]:
    raw = body.get("to")
    to = raw if isinstance(raw, dict) else {}
    agent = agent_of_outbound(message_id or _str(body.get("id")))
    text = str(body.get("text") or "") or (f":{body['emoji']}:" if body.get("emoji") else "")
    return {
        "platform": _str(h.get("platform")) or _str(to.get("platform")),
        "kind": _str(h.get("kind")) or _str(body.get("action")),
        "key": _str(h.get("conversation_key")) or _str(body.get("conversation_key")),
        "agent": agent,
        "sender": agent,
        "text": text,
        "at": parse_time(body.get("created_at")),
        "event_id": _str(h.get("event_id")) or _str(body.get("event_id")),
    }


# ---------------------------------------------------------------- filters


@dataclass(frozen=True, slots=True)
class Clause:
    field: str
    patterns: tuple[str, ...]
    negate: bool = False

    def hits(self, item: Item) -> bool:
        value = item.value(self.field)
        return value is not None and any(fnmatch.fnmatchcase(value, p) for p in self.patterns)


@dataclass(frozen=True, slots=True)
class Filter:
    clauses: tuple[Clause, ...] = ()

    def matches(self, item: Item) -> bool:
        wanted: dict[str, bool] = {}
        for c in self.clauses:
            if c.negate:
                if c.hits(item):
                    return False
            else:
                wanted[c.field] = wanted.get(c.field, False) or c.hits(item)
        return all(wanted.values())

    def __bool__(self) -> bool:
        return bool(self.clauses)


_CLAUSE = re.compile(r"^(?P<field>[a-z]+)(?P<op>!?=)(?P<value>.*)$")
_GLOB = re.compile(r"[*?\[]")
_DIRECTIONS = ("in", "out", "dead")


def is_filter_word(word: str) -> bool:
    return "=" in word


def parse_filters(words: Iterable[str]) -> Filter:
    clauses = []
    for word in words:
        m = _CLAUSE.match(word)
        if m is None:
            raise FilterError(f"filter {word!r} is not FIELD=GLOB or FIELD!=GLOB")
        name = m["field"]
        if name not in FIELDS:
            raise FilterError(f"unknown filter field {name!r}; use one of: {', '.join(sorted(set(FIELDS)))}")
        patterns = tuple(p for p in m["value"].split(",") if p)
        if not patterns:
            raise FilterError(f"filter {word!r} has no value")
        if name in ("dir", "direction") and not all(p in _DIRECTIONS or _GLOB.search(p) for p in patterns):
            raise FilterError(f"dir must be in, out or dead (got {m['value']!r})")
        clauses.append(Clause(name if name != "direction" else "dir", patterns, negate=m["op"] == "!="))
    return Filter(tuple(clauses))


# ---------------------------------------------------------------- printing

_COLORS = {"in": "36", "out": "32", "dead": "31", "dim": "2", "bold": "1", "warn": "33"}


def paint(text: str, style: str, color: bool) -> str:
    return f"\x1b[{_COLORS[style]}m{text}\x1b[0m" if color else text


def excerpt(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def format_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = max(0.0, seconds)
    if s < 1:
        return f"{s * 1000:.0f}ms"
    if s < 60:
        return f"{s:.1f}s" if s < 10 else f"{s:.0f}s"
    m, s = divmod(int(s), 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h}h{m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d{h:02d}h"


def clock(at: datetime | None) -> str:
    return "--:--:--.---" if at is None else at.astimezone().strftime("%H:%M:%S.%f")[:-3]


def format_line(item: Item, *, color: bool = False, width: int = 60) -> str:
    """One readable line: time, direction, platform, kind, conversation, sender, text excerpt."""
    text = f'"{excerpt(item.text, width)}"' if item.text else ""
    if item.direction == "dead":
        why = f"[{item.stage or '?'} {item.reason or '?'} x{item.attempts if item.attempts is not None else '?'}]"
        text = f"{paint(why, 'dead', color)} {excerpt(item.error or '', width)} {text}".rstrip()
    cols = [
        paint(clock(item.at), "dim", color),
        paint(f"{item.direction:<4}", item.direction, color),
        f"{item.platform or '-':<8}",
        f"{item.kind or '-':<8}",
        item.key or "-",
        item.sender or "-",
        text,
    ]
    return " ".join(cols).rstrip()


def format_partitions(partitions: Sequence[int]) -> str:
    """``[0, 1, 2, 3, 8, 10]`` -> ``0-3,8,10``."""
    out: list[str] = []
    ps = sorted(set(partitions))
    i = 0
    while i < len(ps):
        j = i
        while j + 1 < len(ps) and ps[j + 1] == ps[j] + 1:
            j += 1
        out.append(str(ps[i]) if i == j else f"{ps[i]}-{ps[j]}")
        i = j + 1
    return ",".join(out) or "none"


def require_broker(amqp_url: object, command: str) -> None:
    """Operator commands work across processes, so they need the real broker."""
    if amqp_url is None:
        raise ConfigError(
            f"`gateway {command}` needs AMQP_URL (e.g. amqp://guest:guest@127.0.0.1:5672/): it reads RabbitMQ from "
            "its own process. Without AMQP_URL, `gateway dev` keeps its bus inside that one process, where no "
            "other process can see it; run `gateway dev` with AMQP_URL and REDIS_URL to use the operator tools"
        )


class BrokerUnreachable(GatewayError):
    """RabbitMQ at AMQP_URL did not accept a connection; operator commands exit 1."""


@contextlib.asynccontextmanager
async def open_broker(settings: Settings, command: str, *, timeout: float = 15.0) -> AsyncIterator[Bus]:
    """The real bus for an operator command, connected (the topology declared), closed on exit."""
    from gateway.runtime import make_bus

    require_broker(settings.amqp_url, command)
    bus = make_bus(settings)
    try:
        try:
            await asyncio.wait_for(bus.start(), timeout)
        except Exception as exc:
            raise BrokerUnreachable(f"RabbitMQ at AMQP_URL is not reachable: {exc!r}") from exc
        yield bus
    finally:
        await bus.close()


# ---------------------------------------------------------------- terminal helpers


def table(rows: list[list[str]]) -> list[str]:
    """Left-aligned columns; the last one is not padded."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return [" ".join([*(c.ljust(w) for c, w in zip(r, widths, strict=False)), r[-1]]).rstrip() for r in rows]


def ask(prompt: str) -> asyncio.Future[str]:
    """Read a line from stdin without blocking the loop; a daemon thread, so Ctrl-C never waits for Enter."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str] = loop.create_future()

    def deliver(line: str) -> None:
        if not answer.done():
            answer.set_result(line)

    def read() -> None:
        loop.call_soon_threadsafe(deliver, sys.stdin.readline())

    print(prompt, end="", file=sys.stderr, flush=True)
    threading.Thread(target=read, daemon=True).start()
    return answer


@contextlib.contextmanager
def sigterm_cancels() -> Iterator[asyncio.Event]:
    """While inside, SIGTERM cancels the current task (like Ctrl-C) and sets the event it yields."""
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    terminated = asyncio.Event()

    def on_sigterm() -> None:
        terminated.set()
        if task is not None:
            task.cancel()

    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    try:
        yield terminated
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
