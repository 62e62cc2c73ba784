"""Deterministic streams of generated stories, split into disjoint train / valid / test parts.

Randomness: story `i` of (seed, task, split) draws from its own `random.Random`, seeded by a
sha256 of those values, so any story can be regenerated alone and the output is byte-identical
on every machine. (`random.Random` rather than a numpy Generator: the simulators make many
scalar draws, which are about ten times cheaper there, and its integer seeding is stable
across Python versions.)

Splits: a story belongs to the split picked by the sha256 of its own text (1/8 test, 1/8
valid, 6/8 train). A candidate drawn for one split is kept only if its text hashes to that
split, otherwise the next attempt is drawn. So train, valid and test never share a story,
even for tasks with a tiny story space such as qa4, and the content distribution of each
split is that of the generator (the hash is independent of what the story says).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path

from ..errors import BabilabError
from ..outputs import check_output_dir, staged_dir
from .fileformat import file_name, format_stories, format_story
from .story import QA, Story
from .tasks import load_task, parse_tasks

GENERATOR_VERSION = "2"  # bump whenever the same inputs would produce different stories
# The random streams' own name: fixed, so that a version bump changes only the stories of
# the tasks whose code changed (2: qa5, qa8, qa14, qa18, qa19 follow the released data).
_STREAM = "1"
SPLITS = ("train", "valid", "test")
_BUCKETS = 8  # bucket 0 -> test, 1 -> valid, the rest -> train


def story_rng(seed: int, task: str, split: str, index: int, attempt: int) -> random.Random:
    key = f"babilab.babi/{_STREAM}|{seed}|{task}|{split}|{index}|{attempt}"
    digest = hashlib.sha256(key.encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))


def split_of(story: Story) -> str:
    """The split a story belongs to, from the hash of its v1.2 text."""
    digest = hashlib.sha256(format_story(story).encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % _BUCKETS
    return "test" if bucket == 0 else "valid" if bucket == 1 else "train"


def iter_stories(task: str, split: str = "train", seed: int = 0) -> Iterator[Story]:
    """An endless, reproducible stream of complete stories for one task and split."""
    if split not in SPLITS:
        raise BabilabError(f"unknown split {split!r}; splits are {', '.join(SPLITS)}")
    module = load_task(task)
    index = 0
    while True:
        attempt = 0
        while True:
            story = module.generate_story(story_rng(seed, task, split, index, attempt))
            if split_of(story) == split:
                break
            attempt += 1
        yield story
        index += 1


def cut_to_questions(stories: Iterator[Story], n_questions: int) -> list[Story]:
    """Take stories until they hold exactly `n_questions`, cutting the last one short
    right after its last needed question (as the released files do)."""
    out: list[Story] = []
    remaining = n_questions
    for story in stories:
        if remaining <= 0:
            break
        qids = story.question_ids()
        if len(qids) > remaining:
            story = Story(story.task, story.lines[: qids[remaining - 1]])
            qids = qids[:remaining]
        out.append(story)
        remaining -= len(qids)
    return out


def generate_stories(task: str, split: str, n_questions: int, seed: int = 0) -> list[Story]:
    """Stories holding exactly `n_questions` questions of one task.

    >>> [len(s.question_ids()) for s in generate_stories("qa1", "train", 12)]
    [5, 5, 2]
    """
    if n_questions < 0:
        raise BabilabError(f"question count must be >= 0, got {n_questions}")
    return cut_to_questions(iter_stories(task, split, seed), n_questions)


def iter_qas(task: str, split: str = "train", seed: int = 0) -> Iterator[QA]:
    """An endless stream of single questions with their facts, one per question of each story."""
    for story in iter_stories(task, split, seed):
        yield from story.questions()


def take_qas(task: str, split: str, n: int, seed: int = 0) -> list[QA]:
    return list(islice(iter_qas(task, split, seed), n))


def write_files(tasks: str | list[str], split: str, n_questions: int, seed: int,
                out_dir: Path, on_task: Callable[[str], None] | None = None) -> list[Path]:
    """Generate one v1.2 file per task into `out_dir`, all or nothing; `on_task(task)` is
    called as each task's file is ready (a progress bar).

    Every file is built in a temporary folder next to `out_dir` and moved into place only
    once all tasks succeeded, so a failure or an interrupt leaves no partial file behind,
    nor any folder made for `out_dir`.
    """
    names = parse_tasks(tasks if isinstance(tasks, str) else ",".join(tasks))
    if split not in SPLITS:
        raise BabilabError(f"unknown split {split!r}; splits are {', '.join(SPLITS)}")
    if n_questions < 0:
        raise BabilabError(f"question count must be >= 0, got {n_questions}")
    out_dir = Path(out_dir)
    check_output_dir(out_dir, "--out")
    with staged_dir(out_dir) as tmp:
        for task in names:
            text = format_stories(generate_stories(task, split, n_questions, seed))
            (tmp / file_name(task, split)).write_text(text, encoding="ascii")
            if on_task is not None:
                on_task(task)
    return [out_dir / file_name(task, split) for task in names]


__all__ = [
    "GENERATOR_VERSION", "SPLITS", "cut_to_questions", "generate_stories",
    "iter_qas", "iter_stories", "split_of", "story_rng", "take_qas", "write_files",
]
