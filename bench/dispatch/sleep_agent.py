"""A benchmark agent: 20 ms of pretend I/O per turn, no reply, and a per-conversation order check.

Load it through ``gateway.toml``::

    [agents.sleep]
    path = "bench.dispatch.sleep_agent:agent"

with ``GATEWAY_DEFAULT_AGENT=sleep`` and the process started with cwd = the repository root.

Each event's text carries ``seq=N`` (increasing per conversation key in publish order). The agent
keeps the last seq per key in a module dict; a seq lower than the last one seen is an order
violation and is logged as an error line ``order_violation`` (JSON, through structlog like every
other gateway line). An equal seq is a redelivery (at-least-once), counted as ``duplicate_seq``.
``BENCH_AGENT_SLEEP`` (seconds, default 0.02) changes the pretend I/O.
"""

from __future__ import annotations

import asyncio
import os
import re
from typing import Any

import structlog

log = structlog.get_logger("bench.sleep_agent")
_SEQ = re.compile(r"seq=(\d+)")
SLEEP = float(os.environ.get("BENCH_AGENT_SLEEP", "0.02"))

#: conversation key -> last seq handled
last_seq: dict[str, int] = {}
stats = {"turns": 0, "violations": 0, "duplicates": 0, "unparsed": 0}


class SleepAgent:
    name = "sleep"

    async def on_event(self, ctx: Any, event: Any) -> None:
        await asyncio.sleep(SLEEP)
        stats["turns"] += 1
        m = _SEQ.search(event.text or "")
        if m is None:
            stats["unparsed"] += 1
            log.error("order_unparsed", conversation_key=ctx.conversation_key, text=event.text[:80])
            return
        seq = int(m.group(1))
        key = ctx.conversation_key
        prev = last_seq.get(key, -1)
        if seq < prev:
            stats["violations"] += 1
            log.error("order_violation", conversation_key=key, seq=seq, last=prev)
        elif seq == prev:
            stats["duplicates"] += 1
            log.warning("duplicate_seq", conversation_key=key, seq=seq)
        else:
            last_seq[key] = seq


agent = SleepAgent()
