"""Summarize py-spy collapsed stacks (``py-spy record --format raw``): where the samples are.

    python bench/latency/profile.py /tmp/bench-latency/profile-split-consume-*.txt [--top 40]

Prints the share of samples whose stack contains each function ("inclusive", by file:function)
and the share by leaf frame ("self"), both over all samples of the file(s).
"""

from __future__ import annotations

import collections
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import files_parser

REPO = Path(__file__).resolve().parents[2]

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def short(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m.group("file")
    for marker in ("site-packages/", "python3.11/", f"{REPO}/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{m.group('func')}"


def main() -> int:
    ap = files_parser()
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--grep", default="", help="only count stacks containing this text")
    args = ap.parse_args()
    incl: collections.Counter[str] = collections.Counter()
    leaf: collections.Counter[str] = collections.Counter()
    total = 0
    for path in args.files:
        with open(path) as f:
            for line in f:
                stack, _, count = line.rstrip("\n").rpartition(" ")
                if not count.isdigit() or (args.grep and args.grep not in stack):
                    continue
                n = int(count)
                frames = [short(x) for x in stack.split(";") if x]
                total += n
                for fr in set(frames):
                    incl[fr] += n
                if frames:
                    leaf[frames[-1]] += n
    print(f"samples: {total}")
    print("\ninclusive (stack contains):")
    for fr, n in incl.most_common(args.top):
        print(f"  {100 * n / total:5.1f}%  {fr}")
    print("\nself (leaf frame):")
    for fr, n in leaf.most_common(args.top):
        print(f"  {100 * n / total:5.1f}%  {fr}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
