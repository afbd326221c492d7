"""Summarise a ``py-spy record --format raw`` profile (collapsed stacks) of ``gateway serve``.

    python bench/ingress/profile_summary.py /tmp/bench-ingress-.../profile.full.txt [--top 15]

Prints (1) where the samples go by stage of the ingest path, (2) the top functions by self
time, (3) the top functions by inclusive time. Percentages are of all samples (py-spy records
only samples where the process was on CPU unless --idle was given).

Stages are assigned from the leaf up: the first frame that belongs to a known library or
module decides (so JSON decoding inside redis-py counts as Redis, and a line of our own
code in gateway/core/ingest.py that calls structlog counts as logging).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?):(?P<line>\d+)\)$")

# (stage, predicate on "func (file)") checked in order, for each frame from the leaf upwards.
STAGES: list[tuple[str, re.Pattern[str]]] = [
    ("logging (structlog JSON line)", re.compile(r"structlog/|gateway/core/logs\.py|\(json/encoder")),
    ("metrics (prometheus_client)", re.compile(r"prometheus_client/")),
    ("Slack HMAC verify", re.compile(r"connectors/slack/verify\.py|\(hmac\.py|secrets_equal|check_timestamp")),
    ("JSON parse of the body", re.compile(r"parse_json_object|parse_json_body|\(json/decoder|\(json/__init__")),
    ("pydantic Event: serialize (model_dump_json)", re.compile(r"model_dump_json")),
    (
        "pydantic Event: build/copy (validation)",
        re.compile(r"pydantic/|connectors/slack/parse\.py|gateway/core/events\.py"),
    ),
    ("routing (Router.apply, conversation key)", re.compile(r"gateway/core/routing\.py|gateway/core/bus/topology\.py")),
    ("Redis dedupe (redis-py, auto-pipeline)", re.compile(r"redis/|gateway/core/store/redis\.py")),
    (
        "AMQP publish + confirm (aio-pika, aiormq, pamqp)",
        re.compile(r"aio_pika/|aiormq/|pamqp/|gateway/core/bus/amqp\.py|gateway/core/bus/publishes\.py"),
    ),
    ("gateway publish glue (publish.py, headers)", re.compile(r"gateway/core/publish\.py")),
    ("ingest glue (ingest.py)", re.compile(r"gateway/core/ingest\.py")),
    ("HTTP handler glue (http.py: headers dict, body read, response)", re.compile(r"gateway/http\.py")),
    ("aiohttp server (parse request, write response)", re.compile(r"aiohttp/|multidict|yarl/")),
    ("benchmark baseline handler (baseline.py)", re.compile(r"build_app\.<locals>.*\(baseline\.py")),
]
# Frames that only carry work for their caller: a socket write made by redis-py through
# asyncio.StreamWriter counts as Redis, not as asyncio.
GENERIC = re.compile(r"\((asyncio/(?!runners)|contextlib\.py|contextvars|functools\.py|typing\.py|abc\.py|enum\.py)")
EVENT_LOOP = "event loop itself (uvloop run loop, task steps, timers: no library frame above)"


def parse(path: str) -> list[tuple[list[tuple[str, str, str]], int]]:
    stacks = []
    with open(path) as f:
        for raw in f:
            raw = raw.rstrip("\n")
            if not raw:
                continue
            stack, _, count = raw.rpartition(" ")
            frames = []
            for part in stack.split(";"):
                m = FRAME.match(part)
                frames.append((m["func"], m["file"], m["line"]) if m else (part, "", ""))
            stacks.append((frames, int(count)))
    return stacks


def stage_of(frames: list[tuple[str, str, str]]) -> str:
    """The stage of the nearest frame to the leaf that is not generic asyncio/stdlib plumbing."""
    for func, file, _ in reversed(frames):
        key = f"{func} ({file}"
        if GENERIC.search(key):
            continue
        for name, pat in STAGES:
            if pat.search(key):
                return name
    return EVENT_LOOP


def summarise(path: str) -> dict[str, Counter[str]]:
    stacks = parse(path)
    out: dict[str, Counter[str]] = {k: Counter() for k in ("stage", "self", "self_line", "incl")}
    for frames, c in stacks:
        out["stage"][stage_of(frames)] += c
        func, file, line = frames[-1]
        out["self"][f"{func} ({file})"] += c
        out["self_line"][f"{func} ({file}:{line})"] += c
        for key in {f"{fn} ({fl})" for fn, fl, _ in frames}:
            out["incl"][key] += c
    return out


def render(s: dict[str, Counter[str]], top: int = 15, us_per_event: float | None = None) -> str:
    total = sum(s["stage"].values()) or 1
    lines = [f"{total} samples" + (f"; {us_per_event:.0f} us of server CPU per event" if us_per_event else "")]

    def row(name: str, c: int) -> str:
        us = f"{us_per_event * c / total:7.1f} us  " if us_per_event else ""
        return f"  {100 * c / total:5.1f}%  {us}{name}"

    for title, key, n in (
        ("by stage of the ingest path (leaf-up attribution)", "stage", 99),
        (f"top {top} functions by self time", "self", top),
        (f"top {top} lines by self time", "self_line", top),
        (f"top {top} functions by inclusive time", "incl", top),
    ):
        lines.append(f"\n{title}:")
        lines += [row(name, c) for name, c in s[key].most_common(n)]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("profile")
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--us-per-event", type=float, default=None, help="server CPU per event, to print microseconds")
    args = p.parse_args()
    print(render(summarise(args.profile), args.top, args.us_per_event))


if __name__ == "__main__":
    main()
