"""Every `babilab` command's happy path, run through `babilab.cli.main` on tiny real inputs,
checked by what it wrote and what it printed (exit 0 alone proves little).

Most commands already have such a test next to the code they drive; this file holds the
ones that had none, and `COVERED` below says where each of the others is (a test checks
that every command `babilab --help` lists appears in it, and that each named test exists):

    babi generate, babi check, babi stats    tests/babi/test_generate.py
    generate, eval                           here
    rescore, report                          tests/report/test_effective_length.py
    export, import                           tests/runs/test_import.py
    export-suite                             tests/test_export_suite.py
    push --stage-only                        tests/test_push.py
    export-lm-eval                           tests/test_lmeval.py
    train                                    tests/train/test_loop.py (a tiny backbone)

Bad input to every command: tests/test_cli_bad_input.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from babilab.cli import main
from babilab.runs import RunStore
from babilab.suite import Suite

from .conftest import facts_only_suite

TESTS = Path(__file__).resolve().parent
HERE = "tests/test_cli.py"
COVERED = {  # command -> the test of its happy path, "file::function"
    "babi generate": "tests/babi/test_generate.py::test_cli_generate_check_stats",
    "babi check": "tests/babi/test_generate.py::test_cli_generate_check_stats",
    "babi stats": "tests/babi/test_generate.py::test_cli_generate_check_stats",
    "generate": f"{HERE}::test_generate_prints_each_cell_and_writes_a_token_exact_suite",
    "eval": f"{HERE}::test_eval_stores_each_models_predictions_and_prints_the_table",
    "rescore": "tests/report/test_effective_length.py::"
               "test_summary_rescore_and_report_show_the_effective_length",
    "report": "tests/report/test_effective_length.py::"
              "test_summary_rescore_and_report_show_the_effective_length",
    "export": "tests/runs/test_import.py::test_command_line_import_then_rescore_report_export",
    "import": "tests/runs/test_import.py::test_command_line_import_then_rescore_report_export",
    "export-suite": "tests/test_export_suite.py::test_every_sample_loads_back_by_length_and_task",
    "push": "tests/test_push.py::test_stage_only_writes_what_loads_back",
    "export-lm-eval": "tests/test_lmeval.py::"
                      "test_each_task_is_lm_evals_babilong_task_on_the_local_suite",
    "train": "tests/train/test_loop.py::test_resume_rules",
}
TASKS = ("qa1", "qa2", "qa3", "qa4", "qa5")


def run_ok(argv: list, capsys) -> str:
    """stdout of one command line that must succeed."""
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def listed_commands(help_text: str) -> list[str]:
    """The names under "Commands" in a --help text, rich's boxes or click's plain layout."""
    names, inside = [], False
    for line in help_text.splitlines():
        if "Commands" in line:
            inside = True
        elif inside and (found := re.match(r"^(?:│ | {2})([a-z][\w-]*)(?:\s{2,}|\s*$)", line)):
            names.append(found.group(1))
        elif inside and line.startswith("╰"):
            break
    return names


def test_every_command_has_a_happy_path_test(capsys):
    commands = []
    for name in listed_commands(run_ok(["--help"], capsys)):
        if name == "babi":  # a group: its own verbs
            commands += [f"babi {verb}" for verb in listed_commands(run_ok(["babi", "--help"], capsys))]
        else:
            commands.append(name)
    assert len(commands) >= 13 and set(commands) == set(COVERED), commands
    for where in set(COVERED.values()):
        path, function = where.split("::")
        assert f"def {function}(" in (TESTS.parent / path).read_text(), where


def test_generate_prints_each_cell_and_writes_a_token_exact_suite(tmp_path, capsys):
    """The default background (gutenberg, GPT-2 token lengths), as `make demo` runs it."""
    out = tmp_path / "suite"
    lines = run_ok(["generate", "--tasks", "qa1,qa2", "--lengths", "0k,1k", "--samples", "2",
                    "--out", out], capsys).splitlines()
    suite = Suite(out)
    assert re.fullmatch(r"background: gutenberg test split, \d+ books, [\d,]+ gpt2 tokens "
                        r"\(books disjoint from the train split\)", lines[0]), lines[0]
    assert lines[1:5] == ["qa1/0k: 2 samples", "qa1/1k: 2 samples", "qa2/0k: 2 samples",
                          "qa2/1k: 2 samples"]
    assert "1k: repetition factor 1.00 (max 1.00), 0 of 4 contexts repeat background text" in lines
    assert lines[-1] == f"suite {suite.fingerprint[:12]} at {out}"

    info = json.loads((out / "suite.json").read_text())
    assert info["fingerprint"] == suite.fingerprint
    assert info["config"]["tasks"] == ["qa1", "qa2"] and info["config"]["lengths"] == ["0k", "1k"]
    assert suite.cells() == [("qa1", "0k"), ("qa1", "1k"), ("qa2", "0k"), ("qa2", "1k")]
    for task in ("qa1", "qa2"):
        short, long = list(suite.samples(task, "0k")), list(suite.samples(task, "1k"))
        assert [(s.question, s.target, s.facts) for s in short] == \
            [(s.question, s.target, s.facts) for s in long]  # the same questions at every length
        for s in short:
            assert s.input == " ".join(s.facts)  # 0k: the facts alone
        for s in long:  # 1k: 1000 tokens less the 300 reserved for the prompt, facts inside
            assert s.context_tokens == 700 and len(s.input) > 4 * len(" ".join(s.facts))
            assert all(s.input[o:].startswith(f) for o, f in zip(s.fact_char_offsets, s.facts,
                                                                 strict=True))


def test_eval_stores_each_models_predictions_and_prints_the_table(tmp_path, capsys):
    suite = facts_only_suite(tmp_path / "suite", tasks=TASKS, n=2, lengths=("0k", "1k"))
    run = tmp_path / "run"
    eval_ = ["eval", "--suite", suite.path, "--run", run]

    out = run_ok([*eval_, "--model", "oracle"], capsys)
    assert out.startswith(f"oracle: 20 new predictions, 0 already stored, 0 failed -> {run}\n")
    assert "\noracle (babilong metric, best prompt configuration per task)\n" in out
    assert "\ntask         0k      1k  effective\n" in out
    for task in TASKS:
        assert f"\n{task}       100.0   100.0       >=1k\n" in out
    assert "\nqa1-5       100     100  (leaderboard rounding)\n" in out
    assert "\nEffective context length: " in out
    assert {p.name for p in run.iterdir()} >= {"predictions.sqlite", "run.json", "eval_config.yaml",
                                                "scores_babilong.csv", "summary_babilong.json"}
    record = yaml.safe_load((run / "eval_config.yaml").read_text())
    assert (record["suite"], record["run"]) == (str(suite.path), str(run))
    assert record["models"] == [{"model": "oracle", "options": {}}]
    summary = json.loads((run / "summary_babilong.json").read_text())["models"]
    assert {key: (c["accuracy"], c["n"]) for key, c in summary["oracle"]["cells"].items()} == \
        {f"{task}/{length}": (100.0, 2) for task in TASKS for length in ("0k", "1k")}

    # a second model into the same run: both are stored, scored and printed
    out = run_ok([*eval_, "--model", "heuristic:last-place", "--tasks", "qa1"], capsys)
    assert out.startswith(f"last-place: 4 new predictions, 0 already stored, 0 failed -> {run}\n")
    summary = json.loads((run / "summary_babilong.json").read_text())["models"]
    assert set(summary) == {"oracle", "last-place"}
    cells = summary["last-place"]["cells"]
    assert set(cells) == {"qa1/0k", "qa1/1k"}
    row = f"\nqa1    {cells['qa1/0k']['accuracy']:>8.1f}{cells['qa1/1k']['accuracy']:>8.1f}"
    after = out.index("\nlast-place (babilong metric")
    assert row in out[after:] and out.index("\noracle (babilong metric") < after
    assert set(json.loads((run / "run.json").read_text())["models"]) == {"oracle", "last-place"}

    # the same command again answers nothing: every prediction is stored already
    out = run_ok([*eval_, "--model", "oracle"], capsys)
    assert out.startswith(f"oracle: 0 new predictions, 20 already stored, 0 failed -> {run}\n")
    with RunStore(run, create=False) as store:
        stored = list(store.predictions())
    assert len(stored) == 24 and {p.model for p in stored} == {"oracle", "last-place"}
    assert all(p.output == p.target for p in stored if p.model == "oracle")
