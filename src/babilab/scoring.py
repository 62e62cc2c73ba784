"""Scoring answers: the official BABILong metric, a strict metric, leaderboard aggregation and
the effective context length.

`babilong` mode is a line-for-line reimplementation of `booydar/babilong` `babilong/metrics.py`
(BABILong, arXiv 2406.10149), quirks included, so scores match the published leaderboard:
  - only the text before the first "." counts (and before "<context>" / "<example>");
  - its cut at "Question" runs after lower-casing, so it never fires (reproduced, not fixed);
  - labels are found by *substring*: "none" also contains "one", so qa7 "none" is never right,
    and "not"/"know"/"north" all count as "no";
  - labels that occur in the question are never counted as predicted;
  - exactly one label must be found, except for comma lists longer than 3 characters (qa8),
    where the set of labels found must equal the listed targets.

`strict` mode keeps the label sets and the question exclusion but fixes the quirks: labels
match whole words only, the output is cut at the first sentence end, newline, "question",
"<context>" or "<example>" in any case, spaces around commas are ignored ("n, w" is "n,w"),
and a list target must be matched as a set.

Aggregation follows the leaderboard (best prompt configuration per task, then the qa1-qa5
row, rounded as published); the effective context length of a task is the longest length
up to which its accuracy stays at or above a threshold (`EffectiveRule.describe` says how).

This module knows nothing about models or where outputs came from.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import BabilabError

LOCATIONS = ("bathroom", "bedroom", "garden", "hallway", "kitchen", "office")
TASK_LABELS: dict[str, tuple[str, ...]] = {  # the official TASK_LABELS, as published
    "qa1": LOCATIONS, "qa2": LOCATIONS, "qa3": LOCATIONS, "qa4": LOCATIONS,
    "qa5": ("Bill", "Fred", "Jeff", "Mary", "apple", "football", "milk"),
    "qa6": ("no", "yes"),
    "qa7": ("none", "one", "three", "two"),
    "qa8": ("apple", "football", "milk", "nothing"),
    "qa9": ("no", "yes"),
    "qa10": ("maybe", "no", "yes"),
    "qa11": LOCATIONS, "qa12": LOCATIONS, "qa13": LOCATIONS,
    "qa14": ("bedroom", "cinema", "kitchen", "office", "park", "school"),
    "qa15": ("cat", "mouse", "sheep", "wolf"),
    "qa16": ("gray", "green", "white", "yellow"),
    "qa17": ("no", "yes"),
    "qa18": ("no", "yes"),
    "qa19": ("e,e", "e,n", "e,s", "n,e", "n,n", "n,w", "s,e", "s,s", "s,w", "w,n", "w,s", "w,w"),
    "qa20": ("bedroom", "bored", "garden", "hungry", "kitchen", "thirsty", "tired"),
}
MODES = ("babilong", "strict")


def _labels(task: str) -> set[str]:
    if task not in TASK_LABELS:
        raise BabilabError(f"no labels for task {task!r}; tasks are qa1..qa20")
    return {label.lower() for label in TASK_LABELS[task]}


def _official_preprocess(output: str) -> str:
    output = output.lower()
    output = output.split(".")[0]
    output = output.split("<context>")[0]
    output = output.split("<example>")[0]
    output = output.split("Question")[0]  # never matches after lower(): kept as published
    return output


def score_babilong(task: str, target: str, output: str, question: str) -> bool:
    """The official metric (`metrics.compare_answers`), quirks included.

    >>> score_babilong("qa7", "none", "none", "How many objects is Mary carrying? ")
    False
    """
    output = _official_preprocess(output)
    target = target.lower()
    labels = _labels(task)
    in_question = {label for label in labels if label in question.lower()}
    in_output = {label for label in labels if label in output} - in_question
    if "," in target and len(target) > 3:
        parts = target.split(",")
        return all(p in in_output for p in parts) and len(in_output) == len(parts)
    return target in in_output and len(in_output) == 1


_STRICT_CUT = re.compile(r"\.(?:\s|$)|\n|question|<context>|<example>")


def _has_word(label: str, text: str) -> bool:
    # No letter may touch a label, so "one" is not found in "none"; a comma label may not
    # touch another comma either, so "n,w" is not found inside "n,w,s".
    edge = "a-z0-9," if "," in label else "a-z0-9"
    return re.search(rf"(?<![{edge}]){re.escape(label)}(?![{edge}])", text) is not None


def score_strict(task: str, target: str, output: str, question: str) -> bool:
    """Whole-word labels, first sentence only, list targets compared as sets.

    >>> score_strict("qa7", "none", "none", "How many objects is Mary carrying? ")
    True
    >>> score_strict("qa19", "n,w", "n, w", "How do you go from the garden to the office?")
    True
    """
    text = re.sub(r"\s*,\s*", ",", output.lower())
    text = _STRICT_CUT.split(text, maxsplit=1)[0]
    labels = _labels(task)
    q = re.sub(r"\s*,\s*", ",", question.lower())
    in_question = {label for label in labels if _has_word(label, q)}
    in_output = {label for label in labels if _has_word(label, text)} - in_question
    target = target.lower().strip()
    wanted = {target} if target in labels else set(target.split(","))
    return in_output == wanted


def score_answer(task: str, target: str, output: str, question: str, mode: str = "babilong") -> bool:
    """Is `output` a correct answer to `question` with gold `target`, under `mode`?"""
    if mode == "babilong":
        return score_babilong(task, target, output, question)
    if mode == "strict":
        return score_strict(task, target, output, question)
    raise BabilabError(f"unknown scoring mode {mode!r}; modes are {', '.join(MODES)}")


# --- aggregation -------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """Accuracy of one (task, length) cell, in percent, with a 95% Wilson interval."""

    accuracy: float
    n: int
    ci_low: float
    ci_high: float


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a proportion, in percent (well-behaved at 0% and 100%)."""
    if n == 0:
        return 0.0, 100.0
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return 100 * max(0.0, centre - half), 100 * min(1.0, centre + half)


def cell_of(results: Iterable[bool]) -> Cell:
    results = list(results)
    correct = sum(results)
    low, high = wilson_interval(correct, len(results))
    accuracy = 100 * correct / len(results) if results else float("nan")
    return Cell(accuracy, len(results), low, high)


def aggregate(rows: Iterable[tuple[str, str, str, bool]]) -> dict[str, dict[tuple[str, str], Cell]]:
    """(config, task, length, correct) rows -> {config: {(task, length): Cell}}."""
    grouped: dict[str, dict[tuple[str, str], list[bool]]] = defaultdict(lambda: defaultdict(list))
    for config, task, length, correct in rows:
        grouped[config][(task, length)].append(bool(correct))
    return {cfg: {key: cell_of(v) for key, v in cells.items()} for cfg, cells in grouped.items()}


def best_config_per_task(by_config: dict[str, dict[tuple[str, str], Cell]],
                         lengths: list[str]) -> dict[str, str]:
    """The leaderboard's choice: per task, the configuration with the highest mean over
    `lengths`, a missing cell counting as -1 and ties keeping the first configuration seen."""
    best: dict[str, tuple[float, str]] = {}
    tasks = sorted({t for cells in by_config.values() for t, _ in cells}, key=lambda t: int(t[2:]))
    for config, cells in by_config.items():
        for task in tasks:
            values = [cells[(task, n)].accuracy if (task, n) in cells else -1.0 for n in lengths]
            mean = sum(values) / len(values)
            if task not in best or mean > best[task][0]:
                best[task] = (mean, config)
    return {task: config for task, (_, config) in best.items()}


LEADERBOARD_TASKS = ("qa1", "qa2", "qa3", "qa4", "qa5")


def leaderboard_average(table: dict[tuple[str, str], Cell], lengths: list[str],
                        tasks: tuple[str, ...] = LEADERBOARD_TASKS) -> dict[str, float]:
    """Per length, the exact mean accuracy over qa1-qa5; -1 when any of them is missing."""
    out = {}
    for length in lengths:
        cells = [table.get((task, length)) for task in tasks]
        out[length] = -1.0 if any(c is None for c in cells) else sum(c.accuracy for c in cells) / len(cells)
    return out


def leaderboard_row(table: dict[tuple[str, str], Cell], lengths: list[str],
                    tasks: tuple[str, ...] = LEADERBOARD_TASKS) -> dict[str, int | None]:
    """Per length, the number BABILong's leaderboard prints; None when a task is missing.

    Each task's accuracy is rounded to a whole percent first (half to even, as pandas'
    `round()` in the reference's tables), then the qa1-qa5 mean of those whole numbers is
    rounded. Why this rule: it is the only one of those tried that reproduces the published
    Mistral-7B-Instruct-v0.2 row (60 56 52 49 45 42 37 at 0k-32k; BABILong, arXiv 2406.10149,
    github.com/booydar/babilong README) from its published predictions. Rounding the exact
    mean (`leaderboard_average`) gives 53 at 2k (52.54), truncating it gives 59 at 0k, and a
    best configuration per (task, length) instead of per task gives 62 at 0k.
    """
    out: dict[str, int | None] = {}
    for length in lengths:
        cells = [table.get((task, length)) for task in tasks]
        if any(c is None for c in cells):
            out[length] = None
        else:  # five whole numbers: their mean is never exactly half-way, so no tie to break
            out[length] = round(sum(round(c.accuracy) for c in cells) / len(cells))
    return out


# --- effective context length ------------------------------------------------------------


@dataclass(frozen=True)
class EffectiveRule:
    """When does a length count as handled? `relative`: accuracy at or above `value` times the
    task's accuracy at its shortest length (0k when there is one); `absolute`: at or above
    `value` (a fraction: 0.5 is 50%)."""

    kind: str = "relative"
    value: float = 0.85

    def __post_init__(self):
        if self.kind not in ("relative", "absolute"):
            raise BabilabError(f"effective-length threshold kind {self.kind!r}: use relative or "
                               "absolute, e.g. relative:0.85 or absolute:0.5")
        if not 0 <= self.value <= 1:
            raise BabilabError(f"effective-length threshold {self.value:g} is not a fraction in "
                               "[0, 1]; write 0.5 for 50%, e.g. absolute:0.5")

    @classmethod
    def parse(cls, text: str) -> EffectiveRule:
        """`relative:0.85` or `absolute:0.5`."""
        kind, _, value = text.partition(":")
        try:
            number = float(value)
        except ValueError:
            raise BabilabError(f"effective-length threshold {text!r}: expected KIND:FRACTION, "
                               "e.g. relative:0.85 (of the 0k accuracy) or absolute:0.5") from None
        return cls(kind.strip(), number)

    def __str__(self) -> str:
        return f"{self.kind}:{self.value:g}"

    def describe(self, at_least: str = "≥") -> str:
        """The rule in words, for the report and the printed summary."""
        if self.kind == "relative":
            bar = (f"at or above {100 * self.value:g}% of the task's own accuracy at 0k "
                   "(at its shortest length when there is no 0k)")
        else:
            bar = f"at or above {100 * self.value:g}% accuracy"
        return (f"Effective context length: the longest length L such that the accuracy at every "
                f"length up to and including L is {bar}; a dip ends it even if a longer length "
                f"recovers. {at_least}L: no longer length was measured, so it may be longer; "
                "none: no length passes.")


DEFAULT_EFFECTIVE_RULE = EffectiveRule()  # 85% of the shortest length's accuracy


@dataclass(frozen=True)
class EffectiveLength:
    length: str | None  # None: no length passes
    threshold: float | None  # accuracy (%) a length needs; None: nothing measured
    at_least: bool  # the run ended at an unmeasured length (or the longest): may be longer


_FLOAT_NOISE = 1e-9  # 0.85 * 40.0 is 34.00000000000001: a 34.0 must still pass


def effective_length(accuracy: dict[str, float], lengths: list[str],
                     rule: EffectiveRule = DEFAULT_EFFECTIVE_RULE) -> EffectiveLength:
    """The longest of `lengths` (shortest first) up to which every accuracy (%) passes `rule`.

    The run stops at the first length not known to pass: a failing one gives an exact answer;
    one with no accuracy (a gap, or past the task's longest length) gives a lower bound.
    Under a relative rule a task at 0% at its shortest length has no effective length.
    """
    measured = [n for n in lengths if n in accuracy]
    if not measured:
        return EffectiveLength(None, None, False)
    if rule.kind == "relative":
        reference = accuracy[measured[0]]
        if reference <= 0:
            return EffectiveLength(None, 0.0, False)
        threshold = rule.value * reference
    else:
        threshold = 100 * rule.value
    longest = None
    for n in lengths[lengths.index(measured[0]):]:  # a task may start after the model's shortest
        if n not in accuracy:
            return EffectiveLength(longest, threshold, longest is not None)
        if accuracy[n] < threshold - _FLOAT_NOISE:
            return EffectiveLength(longest, threshold, False)
        longest = n
    return EffectiveLength(longest, threshold, True)


def effective_label(effective: dict, at_least: str = "≥") -> str:
    """`4k`, `≥8k` (a lower bound: nothing longer was measured) or `none`, from an
    `EffectiveLength` as a dict; `at_least` is the sign written before a lower bound."""
    if effective["length"] is None:
        return "none"
    return (at_least if effective["at_least"] else "") + effective["length"]
