"""Generated streams: determinism, exact counts, disjoint splits, and the CLI around them."""

from pathlib import Path

import pytest

from babilab.babi import (
    BabiFormatError,
    format_stories,
    generate_stories,
    iter_stories,
    parse_stories,
    parse_tasks,
    read_file,
    solve,
    take_qas,
)
from babilab.babi.fileformat import file_name, format_story
from babilab.babi.generate import split_of
from babilab.babi.vocab import TASK_NAMES
from babilab.cli import main

ALL_TASKS = list(TASK_NAMES)


@pytest.mark.parametrize("task", ALL_TASKS)
def test_same_inputs_same_bytes_and_seeds_differ(task):
    a = format_stories(generate_stories(task, "train", 300, seed=7))
    b = format_stories(generate_stories(task, "train", 300, seed=7))
    c = format_stories(generate_stories(task, "train", 300, seed=8))
    assert a == b
    assert a != c


@pytest.mark.parametrize("task", ALL_TASKS)
def test_exact_question_count_and_round_trip(task):
    stories = generate_stories(task, "test", 1003, seed=1)
    assert sum(len(s.question_ids()) for s in stories) == 1003
    # a cut story ends on a question
    assert stories[-1].question_ids()[-1] == len(stories[-1].lines)
    text = format_stories(stories)
    assert parse_stories(text, task) == stories
    assert text.isascii() and "  " not in text and " \n" not in text


@pytest.mark.slow  # 20 x 3 x 2,000 questions
@pytest.mark.parametrize("task", ALL_TASKS)
def test_splits_never_share_a_story(task):
    by_split = {
        split: {format_story(s) for s in generate_stories(task, split, 2000, seed=0)[:-1]}
        for split in ("train", "valid", "test")
    }
    assert not by_split["train"] & by_split["test"]
    assert not by_split["train"] & by_split["valid"]
    assert not by_split["valid"] & by_split["test"]
    story = next(iter_stories(task, "valid", seed=3))  # a whole story: cut ones hash differently
    assert split_of(story) == "valid"


def test_supports_point_at_facts_for_every_task():
    for task in ALL_TASKS:
        for qa in take_qas(task, "train", 50, seed=2):
            assert qa.supporting and all(0 <= i < len(qa.facts) for i in qa.supporting)
            assert solve(task, list(qa.facts), qa.question) == qa.answer


def test_parse_tasks():
    assert parse_tasks("qa1,qa3-qa5") == ["qa1", "qa3", "qa4", "qa5"]
    assert parse_tasks("2-3,qa2") == ["qa2", "qa3"]
    assert len(parse_tasks("all")) == 20
    for bad in ("qa21", "qa0", "foo", "qa5-qa3", ""):
        with pytest.raises(ValueError):
            parse_tasks(bad)


def test_cli_generate_check_stats(tmp_path: Path, capsys):
    out = tmp_path / "babi"
    assert main(["babi", "generate", "--tasks", "qa1,qa2", "--split", "test",
                 "--questions", "40", "--out", str(out)]) == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == [file_name("qa1", "test"), file_name("qa2", "test")]
    assert main(["babi", "check", str(out)]) == 0
    assert "40 questions, 0 errors" in capsys.readouterr().out
    assert main(["babi", "stats", str(out / files[0]), "--json"]) == 0
    assert '"questions": 40' in capsys.readouterr().out


def test_cli_check_catches_a_wrong_answer(tmp_path: Path, capsys):
    main(["babi", "generate", "--tasks", "qa1", "--questions", "10", "--out", str(tmp_path)])
    path = tmp_path / file_name("qa1", "train")
    stories = read_file(path)
    lines = path.read_text().splitlines(keepends=True)
    q = stories[0].lines[2]
    wrong = next(loc for loc in ("garden", "office") if loc != q.answer)
    lines[2] = lines[2].replace(f"\t{q.answer}\t", f"\t{wrong}\t")
    path.write_text("".join(lines))
    assert main(["babi", "check", str(path)]) == 1
    assert "1 errors" in capsys.readouterr().out


@pytest.mark.parametrize("args", [
    ["--tasks", "qa21"],
    ["--tasks", "qa1", "--questions", "-1"],
    ["--tasks", "qa1", "--questions", "ten"],
    ["--tasks", "qa1", "--split", "dev"],
])
def test_cli_bad_input_one_line_and_nothing_written(tmp_path: Path, capsys, args):
    out = tmp_path / "out"
    assert main(["babi", "generate", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("babilab: error:") and "\n" not in err
    assert not out.exists()
    assert not list(tmp_path.iterdir())  # no temporary folder left either


def test_cli_malformed_file_is_one_line(tmp_path: Path, capsys):
    path = tmp_path / file_name("qa1", "test")
    path.write_text("1 Mary moved to the bathroom.\n2 Where is Mary?\tbathroom\t7\n")
    assert main(["babi", "check", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "supporting id 7" in err
    with pytest.raises(BabiFormatError):
        read_file(path)
