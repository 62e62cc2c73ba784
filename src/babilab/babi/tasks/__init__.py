"""The 20 task modules, loaded by name.

Each module `qaN.py` holds one task, top to bottom: its generator and its solver, written as
two independent paths (the generator tracks a simulated world; the solver re-reads the text),
so the solver can check generated stories as well as the released files.

A task module defines:
    generate_story(rng: random.Random) -> Story
        One complete story (all of its questions); the caller cuts the last story of a file.
    solve(statements: list[tuple[int, str]], question: str) -> Solution
        The answer to `question` from the (line id, text) statements above it alone.
"""

from __future__ import annotations

import importlib
import random
from dataclasses import dataclass
from types import ModuleType
from typing import Protocol

from ...errors import BabilabError
from ..story import Story
from ..vocab import TASK_NAMES


@dataclass(frozen=True)
class Solution:
    answer: str
    # Every acceptable support list. Most questions have exactly one; some tasks allow either
    # order (qa18) or repeat a statement verbatim so that several ids are equally right.
    supports: tuple[tuple[int, ...], ...]


class TaskModule(Protocol):
    def generate_story(self, rng: random.Random) -> Story: ...
    def solve(self, statements: list[tuple[int, str]], question: str) -> Solution: ...


class UnknownTaskError(BabilabError):
    pass


def parse_tasks(spec: str) -> list[str]:
    """`"qa1,qa3-qa5"` -> ["qa1", "qa3", "qa4", "qa5"]; `"all"` -> all 20 tasks.

    Accepts `qa1`, `1`, ranges `qa1-qa5` or `1-5`, in any mix.
    """
    if spec.strip().lower() == "all":
        return list(TASK_NAMES)
    out: list[str] = []
    for part in (p.strip().lower() for p in spec.split(",")):
        bounds = [b.strip().removeprefix("qa") for b in part.split("-")]
        if not part or len(bounds) > 2 or not all(b.isdigit() for b in bounds):
            raise UnknownTaskError(f"bad task {part!r}; use names like qa1, ranges like qa1-qa5, or all")
        lo, hi = int(bounds[0]), int(bounds[-1])
        for n in range(lo, hi + 1):
            if f"qa{n}" not in TASK_NAMES:
                raise UnknownTaskError(f"unknown task qa{n}; tasks are qa1..qa20")
        if lo > hi:
            raise UnknownTaskError(f"empty task range {part!r}")
        out.extend(f"qa{n}" for n in range(lo, hi + 1) if f"qa{n}" not in out)
    return out


def load_task(task: str) -> TaskModule:
    if task not in TASK_NAMES:
        raise UnknownTaskError(f"unknown task {task!r}; tasks are qa1..qa20")
    module: ModuleType = importlib.import_module(f"{__name__}.{task}")
    return module  # type: ignore[return-value]
