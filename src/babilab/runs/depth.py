"""Where in the context a model loses the facts: accuracy by where the supporting facts lie.

Every prediction stores each supporting fact's depth (`support_depths`: % of the context, in
context order) and its suite's placement policy. From those, per model:

    by_first       accuracy by the quarter of the context the first supporting fact lies in,
                   per length (and over all lengths)
    by_last        the same for the last supporting fact
    layout         all supporting facts in the first 25% / spread across the context (first
                   and last at least SPREAD_SPAN points apart) / neither
    early_vs_rest  correct answers when every supporting fact lies in the first 25%, against
                   all the other predictions: the one-line answer
    niah           accuracy by the depth a `depth:D` suite put the facts at x length (the
                   needle-in-a-haystack grid; `generate --depths` builds such suites)

Every cell is {accuracy, n, ci_low, ci_high}. Only predictions under their task's best prompt
configuration count (the one the main table shows), so each sample counts once. Predictions
stored without per-fact depths (imported ones, or stored before babilab recorded them) are
left out and counted in `without_depths`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict

from ..scoring import cell_of

QUARTERS = ("0-25%", "25-50%", "50-75%", "75-100%")
EARLY = 25.0  # "the first 25%": every supporting fact above this depth
SPREAD_SPAN = 50.0  # points between first and last supporting fact that make them "spread"
LAYOUTS = ("all in the first 25%", "spread across the context", "neither")
ALL_LENGTHS = "all"
_DEPTH_PLACEMENT = re.compile(r"depth:(\d+(?:\.\d+)?)")


def quarter(depth: float) -> str:
    return QUARTERS[min(3, max(0, int(depth // 25)))]


def layout(depths: tuple[float, ...]) -> str:
    """Which of LAYOUTS a prediction's supporting facts (depths in context order) form."""
    if depths[-1] < EARLY:
        return LAYOUTS[0]
    if depths[-1] - depths[0] >= SPREAD_SPAN:
        return LAYOUTS[1]
    return LAYOUTS[2]


def placement_depth(placement: str | None) -> str | None:
    """"depth:25" -> "25"; None for any other placement."""
    m = _DEPTH_PLACEMENT.fullmatch(placement or "")
    return f"{float(m.group(1)):g}" if m else None


def grid(rows: Iterable[tuple[str, str, bool]], row_names: Iterable[str],
         lengths: list[str]) -> dict[str, dict[str, dict]]:
    """(row, length, correct) triples -> {row: {length: cell, ..., "all": cell}}; empty
    cells are left out, rows without any prediction too."""
    groups: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for row, length, correct in rows:
        groups[(row, length)].append(correct)
        groups[(row, ALL_LENGTHS)].append(correct)
    return {r: {n: asdict(cell_of(groups[(r, n)])) for n in (*lengths, ALL_LENGTHS)
                if groups.get((r, n))}
            for r in row_names if groups.get((r, ALL_LENGTHS))}


def depth_summary(scored: list, best_config: dict[str, str], lengths: list[str]) -> dict | None:
    """The depth tables of one model's scored predictions; None when none has depths."""
    counted = [s for s in scored if best_config.get(s.prediction.task) == s.prediction.prompt_config]
    located = [(s.prediction, s.correct) for s in counted if s.prediction.support_depths]
    niah = [(d, s.prediction.length, s.correct) for s in counted
            if (d := placement_depth(s.prediction.placement)) is not None]
    if not located and not niah:
        return None
    early = [c for p, c in located if p.support_depths[-1] < EARLY]
    rest = [c for p, c in located if p.support_depths[-1] >= EARLY]
    niah_rows = sorted({d for d, _, _ in niah}, key=float)
    return {
        "lengths": lengths,
        "without_depths": len(counted) - len(located),
        "by_first": grid(((quarter(p.support_depths[0]), p.length, c) for p, c in located),
                         QUARTERS, lengths),
        "by_last": grid(((quarter(p.support_depths[-1]), p.length, c) for p, c in located),
                        QUARTERS, lengths),
        "layout": grid(((layout(p.support_depths), p.length, c) for p, c in located),
                       LAYOUTS, lengths),
        "early_vs_rest": {"early": asdict(cell_of(early)) if early else None,
                          "rest": asdict(cell_of(rest)) if rest else None},
        "niah": {"depths": niah_rows, "cells": grid(niah, niah_rows, lengths)} if niah else None,
    }


def early_vs_rest_line(depth: dict) -> str:
    """The one-line answer: "... first 25% of the context: 96.0% (n=50) vs 41.3% (n=150) ..."."""
    def share(cell: dict | None) -> str:
        return "n/a (n=0)" if cell is None else f"{cell['accuracy']:.1f}% (n={cell['n']})"

    split = depth["early_vs_rest"]
    return (f"correct answers when the supporting facts lie in the first {EARLY:g}% of the "
            f"context: {share(split['early'])} vs the rest: {share(split['rest'])}")
