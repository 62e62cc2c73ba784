"""The structured form of a bAbI story, shared by the generators, the file reader and the solver.

A story is a sequence of lines whose ids are their 1-based positions, as in the v1.2 files.
Statements carry only text; questions carry the gold answer and the supporting statement ids
in reasoning order. `Story.questions()` flattens a story into one `QA` per question the way
BABILong does: every statement before the question, earlier questions dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Statement:
    text: str  # "Mary moved to the bathroom."


@dataclass(frozen=True)
class Question:
    text: str  # "Where is Mary?"
    answer: str  # "bathroom"; several words are comma-joined: "football,apple"
    supports: tuple[int, ...]  # line ids of earlier statements, in reasoning order


Line = Statement | Question


@dataclass(frozen=True)
class Story:
    task: str  # "qa1" .. "qa20"
    lines: tuple[Line, ...]  # lines[i] has id i + 1

    def statements_before(self, line_id: int) -> list[tuple[int, str]]:
        """(id, text) of every statement above line `line_id`."""
        return [
            (i + 1, line.text)
            for i, line in enumerate(self.lines[: line_id - 1])
            if isinstance(line, Statement)
        ]

    def question_ids(self) -> list[int]:
        return [i + 1 for i, line in enumerate(self.lines) if isinstance(line, Question)]

    def questions(self) -> Iterator[QA]:
        """One QA per question, with the supports remapped to indices into its facts.

        >>> s = Story("qa1", (Statement("Mary went to the garden."),
        ...                   Statement("John moved to the office."),
        ...                   Question("Where is Mary?", "garden", (1,))))
        >>> next(s.questions()).supporting
        (0,)
        """
        for qid in self.question_ids():
            before = self.statements_before(qid)
            index_of = {line_id: k for k, (line_id, _) in enumerate(before)}
            q = self.lines[qid - 1]
            assert isinstance(q, Question)
            yield QA(
                task=self.task,
                facts=tuple(text for _, text in before),
                question=q.text,
                answer=q.answer,
                supporting=tuple(index_of[s] for s in q.supports),
            )


@dataclass(frozen=True)
class QA:
    """One question with its context: what BABILong hides in background text."""

    task: str
    facts: tuple[str, ...]  # every statement before the question, in story order
    question: str
    answer: str
    supporting: tuple[int, ...]  # indices into `facts`, in reasoning order
