"""``gateway history KEY [--agent NAME] [--session NAME] [--last N] [--json]``: what an agent did in one conversation.

Prints the conversation's recorded turns, oldest first: each inbound message (with its sender), the tools
the agent called for its answer (arguments and the result it got back, cut at 500 characters), each reply,
and the tokens the turn cost. A turn that was stopped (busy = "interrupt", a stop word, Slack's Stop button)
is marked ``(interrupted: why)`` (``"interrupted"`` in ``--json``). Messages kept while the conversation was
with a person (``gateway handoff``) are marked ``[human]``. ``--session NAME`` reads one of KEY's named
sessions (default ``default``). Read from the history in Redis (``REDIS_URL``; ``hist:{agent}:{KEY}``,
``hist:{agent}:@{NAME}:{KEY}``), so it shows the last turns ``GATEWAY_HISTORY_TTL`` kept (at most 1000).
Without ``--agent`` every agent this gateway serves is looked up and each that has turns for KEY is shown.
Records written before tool calls and usage were kept show their text only. Exit status 0, 1 when Redis does
not answer, 4 when no agent has history for KEY.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import TYPE_CHECKING, Any

from gateway.commands.parsers import documented_parser
from gateway.core.errors import ConfigError, StoreUnavailable
from gateway.core.sessions import check_name
from gateway.core.settings import Settings
from gateway.runtime import make_store

if TYPE_CHECKING:
    from agents.context import Turn

NOT_FOUND = 4
HISTORY_KEEP = 1000


def turn_dict(t: Turn) -> dict[str, Any]:
    return {
        "role": t.role,
        "text": t.text,
        "event_id": t.event_id,
        "sender": t.sender,
        "at": t.at,
        "tool_calls": list(t.tool_calls),
        "usage": t.usage,
        "interrupted": t.interrupted,
        "handoff": t.handoff,
    }


def totals(turns: list[Turn]) -> dict[str, int]:
    out = {"input_tokens": 0, "output_tokens": 0}
    for t in turns:
        for field in out:
            out[field] += int((t.usage or {}).get(field, 0))
    return out


def _when(at: float | None) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if at is not None else " " * 19


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render(agent: str, key: str, turns: list[Turn]) -> list[str]:
    """The text a person reads: one line per message, the tool calls and tokens under the answer."""
    lines = [f"{key}  (agent {agent}, {len(turns)} records)"]
    pad = " " * 21
    for t in turns:
        who = f"user {t.sender}" if t.role == "user" and t.sender else t.role
        who = f"[human] {who}" if t.handoff else who
        stopped = f"  (interrupted: {t.interrupted})" if t.interrupted else ""
        lines.append(f"{_when(t.at)}  {who:<16} {_short(t.text)}{stopped}")
        for call in t.tool_calls:
            mark = "" if call.get("ok", True) else "  (failed)"
            args = _short(str(call.get("arguments", "")), 80)
            lines.append(f"{pad}  tool {call.get('name')}({args}) -> {_short(str(call.get('result', '')), 80)}{mark}")
        if t.usage:
            lines.append(f"{pad}  tokens {t.usage.get('input_tokens', 0)} in, {t.usage.get('output_tokens', 0)} out")
    total = totals(turns)
    lines.append(f"total tokens: {total['input_tokens']} in, {total['output_tokens']} out")
    return lines


async def read_history(
    settings: Settings, key: str, agents: list[str], last: int, session: str = "default"
) -> dict[str, list[Turn]]:
    from agents.context import Turn, history_key

    store = make_store(settings)
    try:
        found: dict[str, list[Turn]] = {}
        for agent in agents:
            raw = await store.tail(history_key(agent, key, session), last)
            if raw:
                found[agent] = [Turn.from_json(r) for r in raw]
        return found
    finally:
        await store.close()


async def run_history(settings: Settings, args: argparse.Namespace) -> int:
    if settings.redis_url is None:
        raise ConfigError("`gateway history` needs REDIS_URL: the history lives in Redis")
    if args.agent:
        agents = [args.agent]
    else:
        from agents.registry import agent_names

        agents = sorted(agent_names(settings, settings.load_file()))
    try:
        found = await read_history(settings, args.key, agents, args.last, args.session)
    except StoreUnavailable as exc:
        print(f"gateway history: Redis did not answer: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(
            json.dumps(
                {
                    "key": args.key,
                    "session": args.session,
                    "agents": {
                        agent: {"turns": [turn_dict(t) for t in turns], "usage": totals(turns)}
                        for agent, turns in found.items()
                    },
                }
            )
        )
    else:
        for agent, turns in found.items():
            print("\n".join(render(agent, args.key, turns)))
        if not found:
            where = "" if args.session == "default" else f" in session {args.session!r}"
            print(f"no history for {args.key}{where} (agents looked up: {', '.join(agents)})", file=sys.stderr)
    return 0 if found else NOT_FOUND


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = documented_parser(
        sub, "history", help="a conversation's turns: messages, tool calls, replies, usage", doc=__doc__
    )
    p.add_argument("key", metavar="KEY", help="the conversation key, like telegram:default:42")
    p.add_argument("--agent", help="only this agent's history of KEY")
    p.add_argument("--last", type=int, default=HISTORY_KEEP, metavar="N", help="the last N records (default all kept)")
    p.add_argument("--session", default="default", type=session_name, help="a named session of KEY (default: default)")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(run=run_history)


def session_name(value: str) -> str:
    try:
        return check_name(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
