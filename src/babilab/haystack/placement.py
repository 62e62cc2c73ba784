"""Placement policies: which gap between background sentences each fact goes into.

A background of m sentences has m + 1 *slots*: slot j is just before sentence j, slot m is
after the last one. A policy maps the facts to slots, non-decreasing in story order, so the
facts keep their bAbI order; facts sharing a slot sit next to each other, in order.

    uniform          BABILong: every fact's slot drawn uniformly over the m + 1 slots, with
                     replacement, then sorted.
    window:S-E       uniform over the slots whose background-token depth lies in [S%, E%) of the
                     context, less the facts' own length at the end (BABILong's
                     task_start_pct/task_end_pct). An empty window falls back to the slot
                     nearest S%.
    depth:D          the supporting facts (and any fact between them in story order, which must
                     stay between them) together at depth D% of the context; the other facts
                     spread evenly before and after them.
    spread           the facts evenly spaced over the background.

Randomness: a policy draws all of its random numbers once, before the background is known
(`draw`), and `slots` is a pure function of those draws and the sentence lengths. Assembly may
call `slots` again after a token-level fix-up without moving the random stream.

Owns only slot choice. Depths and offsets actually reached are measured in assemble.py.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from .errors import PlacementError


class Placement(ABC):
    name: str

    def draw(self, rng: np.random.Generator, n_facts: int) -> np.ndarray:
        """The policy's random numbers for one sample; uniform floats in [0, 1) by default."""
        return rng.random(n_facts)

    @abstractmethod
    def slots(self, draws: np.ndarray, bg_lengths: np.ndarray, fact_lengths: np.ndarray,
              supporting: Sequence[int]) -> np.ndarray:
        """(n_facts,) int64 slots in [0, len(bg_lengths)], non-decreasing.

        bg_lengths: (m,) tokens of each background sentence; fact_lengths: (n_facts,) tokens.
        """

    def __repr__(self) -> str:
        return f"Placement({self.name!r})"


def _slot_starts(bg_lengths: np.ndarray) -> np.ndarray:
    """(m + 1,) background tokens before each slot."""
    out = np.zeros(len(bg_lengths) + 1, dtype=np.int64)
    np.cumsum(bg_lengths, out=out[1:])
    return out


def _nearest_slots(starts: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The slot whose background-token offset is nearest each wanted offset (ties: earlier)."""
    if len(starts) == 1:  # no background: the only slot is 0
        return np.zeros(len(offsets), dtype=np.int64)
    j = np.searchsorted(starts, offsets).clip(1, len(starts) - 1)
    take_left = (offsets - starts[j - 1]) <= (starts[j] - offsets)
    return np.where(take_left, j - 1, j).astype(np.int64)


class Uniform(Placement):
    name = "uniform"

    def slots(self, draws, bg_lengths, fact_lengths, supporting):
        m = len(bg_lengths)
        return np.sort(np.minimum((draws * (m + 1)).astype(np.int64), m))


class Window(Placement):
    def __init__(self, start_pct: float, end_pct: float):
        if not 0 <= start_pct < end_pct <= 100:
            raise PlacementError(f"window:{start_pct:g}-{end_pct:g}: need 0 <= start < end <= 100")
        self.start_pct, self.end_pct = start_pct, end_pct
        self.name = f"window:{start_pct:g}-{end_pct:g}"

    def slots(self, draws, bg_lengths, fact_lengths, supporting):
        starts = _slot_starts(bg_lengths)
        facts = int(np.sum(fact_lengths))
        total = int(starts[-1]) + facts
        lo, hi = self.start_pct / 100 * total, self.end_pct / 100 * total - facts
        allowed = np.flatnonzero((starts >= lo) & (starts < hi))
        if len(allowed) == 0:
            allowed = _nearest_slots(starts, np.array([lo]))
        pick = np.minimum((draws * len(allowed)).astype(np.int64), len(allowed) - 1)
        return np.sort(allowed[pick])


class Depth(Placement):
    def __init__(self, depth_pct: float):
        if not 0 <= depth_pct <= 100:
            raise PlacementError(f"depth:{depth_pct:g}: depth must be within 0..100")
        self.depth_pct = depth_pct
        self.name = f"depth:{depth_pct:g}"

    def draw(self, rng, n_facts):
        return np.empty(0)

    def slots(self, draws, bg_lengths, fact_lengths, supporting):
        n = len(fact_lengths)
        starts = _slot_starts(bg_lengths)
        bg_total = float(starts[-1])
        first, last = (min(supporting), max(supporting)) if supporting else (0, n - 1)
        before_tokens = float(np.sum(fact_lengths[:first]))
        total = bg_total + float(np.sum(fact_lengths))
        # Background tokens before the block so that the block starts at depth D of the
        # whole context (the facts placed before it count towards the depth too).
        at = min(max(self.depth_pct / 100 * total - before_tokens, 0.0), bg_total)
        out = np.empty(n, dtype=np.int64)
        out[first:last + 1] = _nearest_slots(starts, np.array([at]))[0]
        nb, na = first, n - last - 1
        out[:first] = _nearest_slots(starts, at * np.arange(1, nb + 1) / (nb + 1))
        out[last + 1:] = _nearest_slots(
            starts, at + (bg_total - at) * np.arange(1, na + 1) / (na + 1))
        return np.maximum.accumulate(out) if n else out


class Spread(Placement):
    name = "spread"

    def draw(self, rng, n_facts):
        return np.empty(0)

    def slots(self, draws, bg_lengths, fact_lengths, supporting):
        n = len(fact_lengths)
        starts = _slot_starts(bg_lengths)
        return _nearest_slots(starts, starts[-1] * np.arange(1, n + 1) / (n + 1))


_NUMBER = r"(\d+(?:\.\d+)?)"


def parse_placement(spec: str | Placement) -> Placement:
    """A policy from its name: "uniform", "spread", "window:10-50", "depth:25"."""
    if isinstance(spec, Placement):
        return spec
    if spec == "uniform":
        return Uniform()
    if spec == "spread":
        return Spread()
    if m := re.fullmatch(rf"window:{_NUMBER}-{_NUMBER}", spec):
        return Window(float(m.group(1)), float(m.group(2)))
    if m := re.fullmatch(rf"depth:{_NUMBER}", spec):
        return Depth(float(m.group(1)))
    raise PlacementError(f"unknown placement {spec!r}; use uniform, spread, window:START-END "
                         f"or depth:D (percentages)")


__all__ = ["Depth", "Placement", "Spread", "Uniform", "Window", "parse_placement"]
