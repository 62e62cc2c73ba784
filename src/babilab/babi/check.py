"""Validate stories with the symbolic solver: every answer and supporting-id list re-derived.

A question fails when the solver's answer differs, when the recorded supports are not among
the solver's acceptable support lists, or when the solver cannot read the story at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .story import Question, Story
from .tasks import Solution, load_task


@dataclass(frozen=True)
class CheckError:
    task: str
    story_index: int  # 0-based position of the story in its file
    line_id: int
    message: str

    def __str__(self) -> str:
        return f"{self.task} story {self.story_index} line {self.line_id}: {self.message}"


def solve_question(story: Story, line_id: int) -> Solution:
    question = story.lines[line_id - 1]
    assert isinstance(question, Question)
    return load_task(story.task).solve(story.statements_before(line_id), question.text)


def check_stories(stories: Iterable[Story]) -> tuple[int, list[CheckError]]:
    """(questions checked, errors) for the given stories."""
    checked, errors = 0, []
    for index, story in enumerate(stories):
        for line_id in story.question_ids():
            checked += 1
            q = story.lines[line_id - 1]
            assert isinstance(q, Question)
            try:
                got = solve_question(story, line_id)
            except ValueError as e:
                errors.append(CheckError(story.task, index, line_id, f"unsolvable: {e}"))
                continue
            if got.answer != q.answer:
                errors.append(CheckError(story.task, index, line_id,
                                         f"{q.text!r} answer {q.answer!r}, solver says {got.answer!r}"))
            elif q.supports not in got.supports:
                want = " or ".join(" ".join(map(str, s)) for s in got.supports)
                errors.append(CheckError(
                    story.task, index, line_id,
                    f"{q.text!r} supports {' '.join(map(str, q.supports))}, solver says {want}"))
    return checked, errors
