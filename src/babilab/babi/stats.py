"""Per-task statistics of bAbI stories: the tables measured on the released bAbI v1.2 data.

`compute_stats` measures one task's stories; `format_stats` prints them as text tables.
Templates are sentences with entity words replaced by placeholders (A actor or name,
L location, O object, D direction, S shape, N animal, C color, M motivation), so
"Mary went back to the garden." counts as "A went back to the L.".
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from . import vocab
from .story import Question, Statement, Story

RECENCY_MAX = 4  # the recency table has rows k = 0..4; farther supports are counted as ">4"

_PLACEHOLDERS = {
    "A": [*vocab.ACTORS, *vocab.ACTORS_QA5, *vocab.ACTORS_QA10, *vocab.NAMES_QA15,
          *vocab.NAMES_QA16, *vocab.NAMES_QA20],
    "L": [*vocab.LOCATIONS, *vocab.LOCATIONS_QA10],
    "O": [*vocab.OBJECTS, *vocab.OBJECTS_QA20, *vocab.SIZED_OBJECTS],
    "D": list(vocab.DIRECTIONS),
    "S": list(vocab.SHAPES),
    "N": [*vocab.ANIMALS_QA15, *vocab.ANIMALS_QA15.values(), *vocab.ANIMALS_QA16],
    "C": list(vocab.COLORS),
    "M": list(vocab.MOTIVATIONS),
}
_word_to_tag = {w.lower(): tag for tag, words in _PLACEHOLDERS.items() for w in words}
# Longest first so "box of chocolates" wins over "box"; whole words, any case (names are
# lower-cased in some questions, animals capitalised at the start of a sentence).
_ENTITY_RE = re.compile(
    r"\b(" + "|".join(re.escape(w) for w in sorted(_word_to_tag, key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)


def template_of(text: str) -> str:
    """'Mary went back to the garden.' -> 'A went back to the L.'"""
    return _ENTITY_RE.sub(lambda m: _word_to_tag[m.group(0).lower()], text)


def summary(values: list[int]) -> dict[str, float]:
    """min / median / mean / p95 / max, as in the spec's tables."""
    if not values:
        return {"min": 0, "median": 0, "mean": 0.0, "p95": 0, "max": 0}
    ordered = sorted(values)
    return {
        "min": ordered[0],
        "median": statistics.median_low(ordered),
        "mean": round(sum(ordered) / len(ordered), 2),
        "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
        "max": ordered[-1],
    }


def shares(counter: Counter) -> dict[str, float]:
    """Counts -> percentages, most common first."""
    total = sum(counter.values()) or 1
    return {k: round(100 * v / total, 2) for k, v in counter.most_common()}


@dataclass
class TaskStats:
    task: str
    stories: int = 0
    questions: int = 0
    questions_per_story: Counter = field(default_factory=Counter)
    statements_per_story: list[int] = field(default_factory=list)
    statements_before_question: list[int] = field(default_factory=list)
    support_counts: Counter = field(default_factory=Counter)
    answers: Counter = field(default_factory=Counter)
    statement_templates: Counter = field(default_factory=Counter)
    question_templates: Counter = field(default_factory=Counter)
    recency: Counter = field(default_factory=Counter)  # k statements back -> questions

    def as_dict(self) -> dict:
        """Plain numbers: distributions as percentages, lengths as min/median/mean/p95/max."""
        recency = {str(k): self.recency.get(k, 0) for k in range(RECENCY_MAX + 1)}
        recency[f">{RECENCY_MAX}"] = sum(v for k, v in self.recency.items() if k > RECENCY_MAX)
        total = self.questions or 1
        return {
            "task": self.task,
            "stories": self.stories,
            "questions": self.questions,
            "questions_per_story": dict(sorted(self.questions_per_story.items())),
            "statements_per_story": summary(self.statements_per_story),
            "statements_before_question": summary(self.statements_before_question),
            "support_counts": dict(sorted(self.support_counts.items())),
            "answers": shares(self.answers),
            "statement_templates": shares(self.statement_templates),
            "question_templates": shares(self.question_templates),
            "recency": {k: round(100 * v / total, 2) for k, v in recency.items()},
        }


def compute_stats(stories: Iterable[Story]) -> dict[str, TaskStats]:
    """Statistics per task of the given stories."""
    by_task: dict[str, TaskStats] = {}
    for story in stories:
        st = by_task.setdefault(story.task, TaskStats(story.task))
        st.stories += 1
        position: dict[int, int] = {}  # statement line id -> index among statements
        n_questions = 0
        for line_id, line in enumerate(story.lines, start=1):
            if isinstance(line, Statement):
                position[line_id] = len(position)
                st.statement_templates[template_of(line.text)] += 1
                continue
            assert isinstance(line, Question)
            n_questions += 1
            st.statements_before_question.append(len(position))
            st.support_counts[len(line.supports)] += 1
            st.answers[line.answer] += 1
            st.question_templates[template_of(line.text)] += 1
            newest = max(position[s] for s in line.supports)
            st.recency[len(position) - 1 - newest] += 1
        st.questions += n_questions
        st.questions_per_story[n_questions] += 1
        st.statements_per_story.append(len(position))
    return by_task


def format_stats(stats: TaskStats, top: int = 12) -> str:
    """A readable report of one task's statistics."""
    d = stats.as_dict()
    out = [f"== {d['task']}: {d['stories']} stories, {d['questions']} questions"]

    def dist(title: str, values: dict, unit: str = "%") -> None:
        items = list(values.items())
        out.append(f"  {title}:")
        for k, v in items[:top]:
            out.append(f"    {v:>8}{unit}  {k}")
        if len(items) > top:
            out.append(f"    ... {len(items) - top} more")

    for key in ("statements_per_story", "statements_before_question"):
        s = d[key]
        out.append(f"  {key.replace('_', ' ')} (min/median/mean/p95/max): "
                   f"{s['min']}/{s['median']}/{s['mean']}/{s['p95']}/{s['max']}")
    qps = " ".join(f"{k}:{v}" for k, v in d["questions_per_story"].items())
    sup = " ".join(f"{k}:{v}" for k, v in d["support_counts"].items())
    out.append(f"  questions per story: {qps}")
    out.append(f"  supporting ids per question: {sup}")
    dist("answers", d["answers"])
    dist("statement templates", d["statement_templates"])
    dist("question templates", d["question_templates"])
    dist("recency (newest support k statements back)", d["recency"])
    return "\n".join(out)
