"""What ``gateway dlq`` prints: the list, one letter in full, a line per replay step."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from gateway.commands.dlq_letters import Letter
from gateway.commands.dlq_replay import ReplayResult, Step
from gateway.operators import excerpt, format_age, table


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
    if data.get("traceback"):
        lines += ["traceback:", *(f"  {line}" for line in str(data["traceback"]).splitlines())]
    lines += ["body:", *(f"  {line}" for line in dump_json(data["body"], indent=2).splitlines())]
    return lines


def dump_json(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent, default=str)


def replay_lines(steps: Sequence[Step], result: ReplayResult) -> list[str]:
    """A line per selected letter: replayed, failed (why), or what would happen / was held back or refused."""
    done = {id(s) for s in result.replayed}
    failed = {id(s): error for s, error in result.failed}
    verbs = {"replay": "would replay", "hold": "held back", "refuse": "refused"}
    lines = []
    for step in (s for s in steps if s.action != "keep"):
        if id(step) in failed:
            lines.append(_step_line("failed", step, failed[id(step)]))
        else:
            lines.append(_step_line("replayed" if id(step) in done else verbs[step.action], step, _where(step)))
    return lines


def _step_line(verb: str, step: Step, extra: str) -> str:
    i = step.letter.item
    return f"{verb:<10} {step.letter.id}  {i.stage or '-'}/{i.reason or '-'}  {i.key or '-'}  {extra}".rstrip()


def _where(step: Step) -> str:
    if step.target is None:
        return step.note + (" (add it, or --allow-reorder)" if step.action == "hold" else "")
    return f"-> {step.target[0]} key {step.target[1]}"
