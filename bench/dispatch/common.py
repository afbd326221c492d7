"""Helpers of the dispatch benchmark (run.py, summarize.py).

The generic helpers (processes, quiet-machine checks, CPU accounting, Prometheus text parsing,
statistics, namespace cleanup) live in bench/common.py; this module hands them out too (module
``__getattr__``), so ``from bench.dispatch.common import ...`` keeps working.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import bench.common as _common


def __getattr__(name: str) -> Any:
    """``from bench.dispatch.common import X`` for every X of bench/common.py."""
    try:
        return getattr(_common, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted({*globals(), *dir(_common)})


def same_round_ratios(rounds: Iterable[Mapping[str, float]], sep: str = "/") -> dict[str, list[float]]:
    """Events/s ratios taken inside each round (same round = same machine conditions).

    ``rounds``: per round, case (``ours-pN``, ``ours2-pN``, ``bare-pN``) -> events/s. Gives
    ``ours-pN{sep}bare-pN`` and ``ours2-pN{sep}bare-pN`` (one and two processes against the bare
    consumer) and ``ours2-pN{sep}ours-pN`` (two processes against one), a value per round that has both.
    """
    ratios: dict[str, list[float]] = {}
    for per in rounds:
        for case, v in per.items():
            kind, _, pf = case.partition("-p")
            bare = per.get(f"bare-p{pf}")
            if kind in ("ours", "ours2") and bare:
                ratios.setdefault(f"{case}{sep}bare-p{pf}", []).append(v / bare)
            one = per.get(f"ours-p{pf}")
            if kind == "ours2" and one:
                ratios.setdefault(f"{case}{sep}ours-p{pf}", []).append(v / one)
    return ratios
