"""Merge results.json files of run.py (several invocations) into medians and same-round ratios.

    python bench/dispatch/summarize.py /tmp/bench-dispatch/results.json /tmp/bench-dispatch-r2/results.json

A "round" is one (file, round) pair: ratios are only taken between cases of the same round. For a
case measured more than once in a round (a retry after interference), the last attempt counts. Runs
whose foreign CPU (other people's processes) exceeded --foreign-limit cores are listed and left out.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import FOREIGN_LIMIT, files_parser
from bench.dispatch.common import same_round_ratios


def main() -> int:
    ap = files_parser()
    ap.add_argument("--foreign-limit", type=float, default=FOREIGN_LIMIT)
    ap.add_argument("--drop", default="", help="comma list of file:round:case to leave out (e.g. a lone re-run)")
    args = ap.parse_args()
    drop = set(args.drop.split(",")) if args.drop else set()
    rounds: dict[str, dict[str, dict[str, Any]]] = {}
    left_out = []
    for i, path in enumerate(args.files):
        with open(path) as f:
            data = json.load(f)
        for r in data["results"]:
            tag = f"{i}:{r['round']}"
            if f"{tag}:{r['case']}" in drop:
                continue
            foreign = r.get("interference", {}).get("foreign_cores", 0.0)
            if not r.get("ok") or foreign > args.foreign_limit:
                left_out.append((tag, r["case"], r.get("events_per_s"), foreign, r.get("ok")))
                continue
            rounds.setdefault(tag, {})[r["case"]] = r
    cases = sorted({c for per in rounds.values() for c in per}, key=lambda c: (c.split("-p")[0], int(c.split("-p")[1])))
    print(
        "| case | events/s per round | median events/s | consumer CPU µs/event (median) | cores: consumer(s) / RabbitMQ | order violations | left in queues |"
    )
    print("|---|---|---|---|---|---|---|")
    for case in cases:
        rs = [per[case] for per in rounds.values() if case in per]
        rates = [r["events_per_s"] for r in rs]
        cpu = statistics.median(r["consumer_cpu_us_per_event"] for r in rs)
        cons = statistics.median(
            sum(v for k, v in r["cores_used"].items() if k not in ("rabbitmq", "redis")) for r in rs
        )
        rmq = statistics.median(r["cores_used"]["rabbitmq"] for r in rs)
        print(
            f"| {case} | {', '.join(str(x) for x in rates)} | **{statistics.median(rates):.0f}** | {cpu:.0f} | "
            f"{cons:.2f} / {rmq:.2f} | {sum(r.get('order_violations', 0) for r in rs)} | "
            f"{sum(r.get('left_in_queues', 0) for r in rs)} |"
        )
    ratios = same_round_ratios(({case: r["events_per_s"] for case, r in per.items()} for per in rounds.values()), " / ")
    print("\n| ratio (same round) | per round | median |\n|---|---|---|")
    for k in sorted(ratios):
        v = ratios[k]
        print(f"| {k} | {', '.join(f'{x:.2f}' for x in v)} | **{statistics.median(v):.2f}** |")
    if left_out:
        print("\nleft out (not ok, or foreign CPU over the limit):")
        for item in left_out:
            print("  ", item)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
