"""The bAbI world: 20 task generators, the v1.2 file reader/writer, statistics and a solver.

    >>> from babilab.babi import generate_stories, format_stories
    >>> print(format_stories(generate_stories("qa1", "train", 1)), end="")  # doctest: +SKIP
    1 Daniel travelled to the kitchen.
    2 Sandra went to the bedroom.
    3 Where is Daniel? \tkitchen\t1

Knows nothing about tokens or models; `QA` (one question with its facts) is what the rest
of babilab consumes.
"""

from .check import CheckError, check_stories
from .fileformat import BabiFormatError, find_files, format_stories, parse_stories, read_file
from .generate import (
    GENERATOR_VERSION,
    SPLITS,
    generate_stories,
    iter_qas,
    iter_stories,
    take_qas,
    write_files,
)
from .stats import compute_stats, format_stats
from .story import QA, Question, Statement, Story
from .tasks import Solution, UnknownTaskError, load_task, parse_tasks
from .vocab import TASK_NAMES


def solve(task: str, facts: list[str], question: str) -> str:
    """The solver's answer to `question` given the statements `facts` (the oracle).

    >>> solve("qa1", ["Mary went to the garden.", "John moved to the office."], "Where is Mary?")
    'garden'
    """
    statements = list(enumerate(facts, start=1))
    return load_task(task).solve(statements, question).answer


__all__ = [
    "GENERATOR_VERSION", "QA", "SPLITS", "TASK_NAMES", "BabiFormatError", "CheckError",
    "Question", "Solution", "Statement", "Story", "UnknownTaskError", "check_stories",
    "compute_stats", "find_files", "format_stats", "format_stories", "generate_stories",
    "iter_qas", "iter_stories", "load_task", "parse_stories", "parse_tasks", "read_file",
    "solve", "take_qas", "write_files",
]
