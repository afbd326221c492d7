"""Helpers of the dispatch benchmark (run.py, summarize.py); the generic ones live in bench/common.py."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


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
