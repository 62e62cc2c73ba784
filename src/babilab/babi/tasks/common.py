"""Small pieces every task module uses: a story builder, weighted draws and the move parser."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from typing import TypeVar

from ..story import Line, Question, Statement, Story
from ..vocab import MOVE_VERBS

T = TypeVar("T")


class StoryBuilder:
    """Collects lines; `say` and `ask` return the new line's id."""

    def __init__(self, task: str):
        self.task = task
        self.lines: list[Line] = []
        self.statement_ids: list[int] = []  # ids of statements so far, in order

    def say(self, text: str) -> int:
        self.lines.append(Statement(text))
        self.statement_ids.append(len(self.lines))
        return len(self.lines)

    def ask(self, text: str, answer: str, supports: Sequence[int]) -> int:
        self.lines.append(Question(text, answer, tuple(supports)))
        return len(self.lines)

    def statements_back(self, line_id: int) -> int:
        """How many statements lie between statement `line_id` and the end (0 = the last one)."""
        return len(self.statement_ids) - 1 - self.statement_ids.index(line_id)

    def build(self) -> Story:
        return Story(self.task, tuple(self.lines))


def weighted(rng: random.Random, options: Sequence[T], weights: Sequence[float]) -> T:
    """One draw of `options` with the given (unnormalised) weights."""
    return rng.choices(options, weights=weights)[0]


def pick_by_recency(rng: random.Random, weights: Sequence[float],
                    candidate: Callable[[int], T | None], tries: int = 50) -> T | None:
    """Draw k (statements back) from `weights` and return `candidate(k)`; redraw on None.

    This reproduces the released data's preference for questions about recent facts
    (the recency measured on the released data). Returns None if nothing fits.
    """
    ks = range(len(weights))
    for _ in range(tries):
        found = candidate(weighted(rng, ks, weights))
        if found is not None:
            return found
    for k in ks:  # every draw missed: take the most recent that fits
        found = candidate(k)
        if found is not None:
            return found
    return None


# "Mary went back to the garden." -> actor, location
_verbs = "|".join(re.escape(v) for v in sorted(MOVE_VERBS, key=len, reverse=True))
MOVE_RE = re.compile(rf"^(?P<actor>[A-Z][a-z]+) (?:{_verbs}) the (?P<location>[a-z]+)\.$")
