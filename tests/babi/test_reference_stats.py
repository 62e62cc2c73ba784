"""Generated data is correct and matches the released en-10k statistics.

For every task, the solver re-derives all answers and supports of 10,000 generated train
questions with 0 errors.

For every task, 10,000 generated train questions must have every answer share, template
share, recency share (the newest support k statements back), questions-per-story share and
supporting-ids-per-question share within 3 percentage points of tests/babi/reference/, and
mean statements per story and before each question within 10%. The reference numbers
come from the released bAbI v1.2 data (Weston et al. 2015): test_released.py checks them
against the released files where those are at hand.
"""

import json
from pathlib import Path

import pytest

from babilab.babi.check import check_stories
from babilab.babi.generate import generate_stories
from babilab.babi.stats import compute_stats
from babilab.babi.vocab import TASK_NAMES

REFERENCE = Path(__file__).parent / "reference"
TASKS = sorted((p.stem for p in REFERENCE.glob("qa*.json")), key=lambda t: int(t[2:]))


def assert_shares_close(name: str, got: dict, want: dict, points: float = 3.0) -> None:
    for key in sorted(set(got) | set(want)):
        g, w = got.get(key, 0.0), want.get(key, 0.0)
        assert abs(g - w) <= points, f"{name} {key!r}: generated {g}%, released {w}%"


def percentages(counts: dict) -> dict[str, float]:
    total = sum(counts.values())
    return {str(k): 100 * v / total for k, v in counts.items()}


@pytest.fixture(scope="module")
def measured():
    """task -> (stats dict, check errors) of 10,000 generated train questions."""
    cache = {}

    def get(task):
        if task not in cache:
            stories = generate_stories(task, "train", 10_000, seed=0)
            checked, errors = check_stories(stories)
            assert checked == 10_000
            cache[task] = compute_stats(stories)[task].as_dict(), errors
        return cache[task]

    return get


@pytest.mark.slow  # 20 x 10,000 questions
@pytest.mark.parametrize("task", list(TASK_NAMES))
def test_solver_agrees_on_10k_questions(task, measured):
    _, errors = measured(task)
    assert not errors, f"{len(errors)} errors, first: {errors[0]}"


def test_every_task_has_reference_statistics():
    assert TASKS == list(TASK_NAMES)
    for task in TASKS:
        ref = json.loads((REFERENCE / f"{task}.json").read_text())
        assert {"answers", "statement_templates", "question_templates", "recency",
                "questions_per_story", "support_counts"} <= set(ref), task


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_matches_released_statistics(task, measured):
    ref = json.loads((REFERENCE / f"{task}.json").read_text())
    got, _ = measured(task)
    assert got["questions"] == 10_000
    assert_shares_close("answer", got["answers"], ref["answers"])
    assert_shares_close("statement template", got["statement_templates"], ref["statement_templates"])
    if "question_templates" in ref:
        assert_shares_close("question template", got["question_templates"], ref["question_templates"])
    for key in ("statements_per_story", "statements_before_question"):
        g, w = got[key]["mean"], ref[f"{key}_mean"]
        assert abs(g - w) <= 0.1 * w, f"mean {key}: generated {g}, released {w}"
    assert_shares_close("recency k=", got["recency"], ref["recency"])
    assert_shares_close("questions per story", percentages(got["questions_per_story"]),
                        ref["questions_per_story"])
    assert_shares_close("supporting ids per question", percentages(got["support_counts"]),
                        ref["support_counts"])
