"""The usage part of ``gateway status --usage``: tokens per agent and route, all time and today (UTC).

Read from the counters the consumers keep in Redis (consumers/usage.py documents the keys): ``usage:agents``,
``usage:routes`` and ``usage:day:{YYYY-MM-DD}``. Only succeeded turns of model agents are counted.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from typing import Any

from gateway.core.settings import Settings
from gateway.runtime import make_store

_NAMES = {"in": "input_tokens", "out": "output_tokens", "turns": "turns"}


def parse_counters(fields: Mapping[str, str], prefix: str = "") -> dict[str, dict[str, int]]:
    """``{prefix}{name}|in`` … fields as ``{name: {"input_tokens", "output_tokens", "turns"}}``."""
    out: dict[str, dict[str, int]] = {}
    for field, value in fields.items():
        if not field.startswith(prefix):
            continue
        name, _, what = field[len(prefix) :].rpartition("|")
        if name and what in _NAMES:
            entry = out.setdefault(name, {"input_tokens": 0, "output_tokens": 0, "turns": 0})
            entry[_NAMES[what]] = int(value)
    return dict(sorted(out.items()))


async def usage_report(settings: Settings, now: dt.datetime | None = None) -> dict[str, Any]:
    day = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d")
    store = make_store(settings)
    try:
        agents, routes, today = await asyncio.gather(
            store.hall("usage:agents"), store.hall("usage:routes"), store.hall(f"usage:day:{day}")
        )
    finally:
        await store.close()
    return {
        "agents": parse_counters(agents),
        "routes": parse_counters(routes),
        "today": {"day": day, "agents": parse_counters(today, "agent|"), "routes": parse_counters(today, "route|")},
    }


def _rows(title: str, counters: Mapping[str, Mapping[str, int]]) -> list[str]:
    if not counters:
        return [f"  {title}: none yet"]
    w = max(len(n) for n in counters)
    lines = [f"  {title}:"]
    for name, c in counters.items():
        lines.append(
            f"    {name:<{w}}  {c['input_tokens']:>10} in  {c['output_tokens']:>10} out  {c['turns']:>7} turns"
        )
    return lines


def format_usage(report: Mapping[str, Any]) -> list[str]:
    today = report["today"]
    lines = ["usage (model tokens of succeeded turns)"]
    lines += _rows("agents", report["agents"]) + _rows("routes", report["routes"])
    lines += _rows(f"agents today ({today['day']} UTC)", today["agents"])
    lines += _rows(f"routes today ({today['day']} UTC)", today["routes"])
    return lines
