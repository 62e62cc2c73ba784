"""The released bAbI v1.2 data (Weston et al. 2015): the solver re-derives it, and the
reference statistics in tests/babi/reference/ are its own.

The released en-10k files travel as an archive in the shared data folder next to the
repository; these tests unpack it into a temporary folder and skip when it is absent.

`babilab babi check` on all 40 files (211,000 questions) must re-derive every answer and
supporting-id list but 20, the one documented quirk of the released data: qa5 questions
"What did X give to Y?" where X gave Y two objects that both kept their place since, and
the label is the older give (see babilab.babi.tasks.qa5.solve).
"""

import json
import re
from pathlib import Path

import pytest

from babilab.babi import check_stories, compute_stats, find_files, read_file
from babilab.babi.fileformat import file_name, task_of_file
from babilab.babi.vocab import TASK_NAMES
from babilab.cli import main

from ..shared_data import unpack

pytestmark = pytest.mark.slow  # 211,000 released questions, unpacked and checked
ARCHIVE = "babi-en-10k.tar.gz"
REFERENCE = Path(__file__).parent / "reference"
# The qa5 quirk: mismatching questions per released file.
QA5_QUIRK = {"train": 18, "test": 2}
QA5_QUIRK_QUESTION = re.compile(r"^'What did [A-Z][a-z]+ give to [A-Z][a-z]+\?' answer ")


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    """The archive unpacked into a temporary folder: the folder holding the 40 files."""
    return unpack(ARCHIVE, tmp_path_factory) / "babi-en-10k"


@pytest.fixture(scope="module")
def check_errors(released) -> dict[tuple[str, str], list]:
    """(task, split) -> the check errors of that released file."""
    out = {}
    for path in find_files(released):
        _, errors = check_stories(read_file(path))
        out[task_of_file(path)] = errors
    return out


def test_all_40_files_are_there(released):
    assert len(find_files(released)) == 40


@pytest.mark.parametrize("task", [t for t in TASK_NAMES if t != "qa5"])
def test_solver_rederives_every_released_question(task, check_errors):
    for split in ("train", "test"):
        errors = check_errors[(task, split)]
        assert not errors, f"{task} {split}: {len(errors)} errors, first: {errors[0]}"


def test_qa5_mismatches_are_exactly_the_documented_quirk(check_errors):
    for split, count in QA5_QUIRK.items():
        errors = check_errors[("qa5", split)]
        assert len(errors) == count, [str(e) for e in errors]
        assert all(QA5_QUIRK_QUESTION.match(e.message) for e in errors), [str(e) for e in errors]


def test_cli_check_passes_clean_files_and_fails_on_the_quirk(released, capsys):
    assert main(["babi", "check", str(released / file_name("qa14", "train"))]) == 0
    assert ": 10000 questions, 0 errors" in capsys.readouterr().out
    assert main(["babi", "check", str(released / file_name("qa5", "test"))]) == 1
    assert ": 1000 questions, 2 errors" in capsys.readouterr().out


def percentages(counts: dict) -> dict[str, float]:
    total = sum(counts.values())
    return {str(k): round(100 * v / total, 2) for k, v in counts.items()}


@pytest.mark.parametrize("task", list(TASK_NAMES))
def test_reference_statistics_are_the_released_ones(task, released):
    """The measured keys exactly (tools/babi_reference.py writes them); the shares that
    the reference derives from the task's definition within 3 points, except qa3's
    answers: uniform by definition, while its only train file has 1,000 questions
    (bathroom 19.8%, and garden 21.5% in the test file: noise)."""
    ref = json.loads((REFERENCE / f"{task}.json").read_text())
    got = compute_stats(read_file(released / file_name(task, "train")))[task].as_dict()
    assert got["recency"] == ref["recency"]
    assert percentages(got["questions_per_story"]) == ref["questions_per_story"]
    assert percentages(got["support_counts"]) == ref["support_counts"]
    keys = ["statement_templates", "question_templates"] + ([] if task == "qa3" else ["answers"])
    for key in keys:
        for name in set(got[key]) | set(ref[key]):
            assert abs(got[key].get(name, 0) - ref[key].get(name, 0)) <= 3, (key, name)
    for key in ("statements_per_story", "statements_before_question"):
        assert abs(got[key]["mean"] - ref[f"{key}_mean"]) <= 0.1 * ref[f"{key}_mean"]


def test_qa5_quirk_is_documented_with_its_counts():
    from babilab.babi.tasks import qa5

    doc = " ".join(qa5.solve.__doc__.split())
    assert (f"the other {sum(QA5_QUIRK.values())} ({QA5_QUIRK['train']} in the en-10k train "
            f"file, {QA5_QUIRK['test']} in test)") in doc
