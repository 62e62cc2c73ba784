"""`babilab import`: published BABILong predictions into a run store, losing and pooling nothing.

The published predictions of Mistral-7B-Instruct-v0.2 (BABILong, arXiv 2406.10149;
github.com/booydar/babilong) are imported, and the leaderboard numbers babilab computes from
the store are checked against the same numbers computed here straight from the CSV files,
with the official metric and BABILong's aggregation (`collect_results.get_results_table`):
per task the configuration with the best mean over lengths (a missing cell counting -1),
then the qa1-qa5 mean per length; the leaderboard prints that mean from each task's
accuracy rounded to a whole percent, which is what reproduces the published row exactly.
"""

import csv
import json
import sqlite3
from collections import defaultdict
from pathlib import Path

import pytest

from babilab.cli import main
from babilab.runs import RunStore, export_babilong, import_babilong, score_run
from babilab.scoring import score_babilong

from ..shared_data import unpack

ARCHIVE = "babilong-predictions-mistral-7b.tar.gz"
MODEL = "mistralai/Mistral-7B-Instruct-v0.2"
CONFIG = "instruction_yes_examples_yes_post_prompt_yes_chat_template_yes_system_prompt_no"
# The BABILong README leaderboard row of Mistral-7B-Instruct-v0.2, 0k..32k
PUBLISHED_ROW = {"0k": 60, "1k": 56, "2k": 52, "4k": 49, "8k": 45, "16k": 42, "32k": 37}


def csv_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def official_leaderboard(model_dir: Path):
    """(best config per task, {(task, length): accuracy} under it, qa1-qa5 mean per length,
    the leaderboard's row: the mean of whole-percent task accuracies, rounded), computed from
    the CSV files alone."""
    accuracy: dict[str, dict[tuple[str, str], float]] = defaultdict(dict)
    for path in model_dir.glob("*.csv"):
        task, length, config = path.stem.split("_", 2)
        rows = csv_rows(path)
        correct = sum(score_babilong(task, r["target"], r["output"], r["question"]) for r in rows)
        accuracy[config][(task, length)] = 100 * correct / len(rows)
    lengths = sorted({n for cells in accuracy.values() for _, n in cells},
                     key=lambda n: int(n.removesuffix("k")))
    tasks = {t for cells in accuracy.values() for t, _ in cells}
    best = {}
    for task in tasks:
        means = {config: sum(cells.get((task, n), -1.0) for n in lengths) / len(lengths)
                 for config, cells in accuracy.items()}
        first, second = sorted(means.values(), reverse=True)[:2]
        assert first > second  # no tie, so the order configurations are met in cannot matter
        best[task] = max(means, key=means.__getitem__)
    table = {(t, n): accuracy[best[t]][(t, n)] for t in tasks for n in lengths
             if (t, n) in accuracy[best[t]]}
    average = {n: sum(table[(f"qa{i}", n)] for i in range(1, 6)) / 5 for n in lengths}
    row = {n: round(sum(round(table[(f"qa{i}", n)]) for i in range(1, 6)) / 5) for n in lengths}
    return best, table, average, row


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    """The archive unpacked into a temporary folder: <root>/mistralai/Mistral-7B-Instruct-v0.2."""
    return unpack(ARCHIVE, tmp_path_factory) / "babilong-predictions"


@pytest.fixture(scope="module")
def imported(published, tmp_path_factory) -> tuple[Path, list]:
    run = tmp_path_factory.mktemp("imported") / "run"
    return run, import_babilong(published, run)


@pytest.mark.slow  # imports the published predictions
def test_every_csv_row_is_one_prediction(published, imported):
    run, summaries = imported
    files = sorted((published / MODEL).glob("*.csv"))
    n_rows = sum(len(csv_rows(p)) for p in files)
    assert [(s.label, s.files, s.new, s.skipped) for s in summaries] == [(MODEL, 100, n_rows, 0)]
    with RunStore(run, create=False) as store:
        predictions = list(store.predictions())
    assert len(predictions) == n_rows == 99644
    assert {p.model for p in predictions} == {MODEL}
    assert len({(p.sample_id, p.prompt_config) for p in predictions}) == n_rows
    first = next(p for p in predictions if p.sample_id == "qa1/0k/0"
                 and p.prompt_config == "instruction_yes_examples_yes_post_prompt_yes")
    assert (first.target, first.question) == ("hallway", "Where is John? ")


@pytest.mark.slow
def test_leaderboard_equals_the_one_computed_from_the_csv_files(published, imported):
    run, _ = imported
    best, table, average, row = official_leaderboard(published / MODEL)
    summary = score_run(run)["models"][MODEL]
    assert summary["best_config"] == best
    assert {tuple(key.split("/")): cell["accuracy"] for key, cell in summary["cells"].items()} == table
    assert summary["qa1_qa5_average"] == average
    assert summary["leaderboard"] == row == PUBLISHED_ROW  # every number, exactly
    # rounding the exact mean instead misses the published 2k number: 52.54 -> 53
    assert round(average["2k"], 2) == 52.54 and row["2k"] == 52


@pytest.mark.slow
def test_importing_again_adds_nothing(published, imported):
    run, _ = imported
    before = (run / "predictions.sqlite").stat().st_size, json.loads((run / "run.json").read_text())
    for folder in (published, published / MODEL):  # the whole layout, or the model's folder
        again = import_babilong(folder, run)
        assert [(s.label, s.new, s.skipped) for s in again] == [(MODEL, 0, 99644)]
    with sqlite3.connect(run / "predictions.sqlite") as db:
        assert db.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM predictions").fetchone() == (
            99644, 99644)
    assert json.loads((run / "run.json").read_text())["models"].keys() == before[1]["models"].keys()


@pytest.mark.slow
def test_export_gives_back_the_csv_files(published, imported, tmp_path):
    run, _ = imported
    export_babilong(run, tmp_path)
    originals = sorted((published / MODEL).glob("*.csv"))
    exported = sorted((tmp_path / MODEL).glob("*.csv"))
    assert [p.name for p in exported] == [p.name for p in originals]
    columns = ("", "target", "output", "question")
    for original, copy in zip(originals, exported, strict=True):
        assert ([tuple(r[c] for c in columns) for r in csv_rows(copy)]
                == [tuple(r[c] for c in columns) for r in csv_rows(original)]), original.name


# --- small hand-made folders: the command line, bad input --------------------------------


def write_predictions(folder: Path, name: str, rows: list[tuple[str, str, str]],
                      prompt: dict | None = None, header=("", "target", "output", "question")) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / name, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows([i, *row] for i, row in enumerate(rows))
    if prompt is not None:
        (folder / name).with_suffix(".json").write_text(json.dumps(prompt))


QA1_ROWS = [("garden", "The most recent location of Mary is garden.", "Where is Mary?"),
            ("office", "The most recent location of John is kitchen.", "Where is John?"),
            ("hallway", "hallway.\nmulti-line, \"quoted\" output", "Where is Sandra?")]


def test_command_line_import_then_rescore_report_export(tmp_path, capsys):
    root = tmp_path / "preds"
    prompt = {"prompt": {"instruction": "Answer.", "examples": "", "post_prompt": "",
                         "template": "{instruction}\n\n{context}\n\nQuestion: {question}",
                         "chat_template": True},
              "generate_kwargs": {"max_new_tokens": 20, "do_sample": False}}
    write_predictions(root / "org" / "model-a", f"qa1_0k_{CONFIG}.csv", QA1_ROWS, prompt)
    write_predictions(root / "org" / "model-a", f"qa1_4k_{CONFIG}.csv", QA1_ROWS[:2])
    write_predictions(root / "other" / "model-b", "qa2_1k_instruction_no_examples_no_post_prompt_no.csv",
                      [("kitchen", "kitchen", "Where is the milk?")])
    run = tmp_path / "run"
    assert main(["import", str(root), "--run", str(run)]) == 0
    out = capsys.readouterr().out
    assert "org/model-a: 5 new predictions, 0 already stored, from 2 files" in out
    assert "other/model-b: 1 new predictions" in out
    assert main(["import", str(root / "org" / "model-a"), "--run", str(run)]) == 0
    assert "org/model-a: 0 new predictions, 5 already stored" in capsys.readouterr().out

    note = json.loads((run / "run.json").read_text())["models"]["org/model-a"]
    assert note["prompt_configs"] == [CONFIG]
    assert note["imported"]["prompts"][CONFIG] == [{
        "template": prompt["prompt"]["template"], "chat_template": True, "parts": ["instruction"],
        "generate_kwargs": prompt["generate_kwargs"]}]

    assert main(["rescore", str(run)]) == 0
    summary = json.loads((run / "summary_babilong.json").read_text())["models"]
    assert summary["org/model-a"]["cells"]["qa1/0k"]["accuracy"] == pytest.approx(200 / 3)
    assert summary["org/model-a"]["cells"]["qa1/4k"]["accuracy"] == 50.0
    assert summary["other/model-b"]["cells"]["qa2/1k"]["accuracy"] == 100.0
    assert main(["report", str(run)]) == 0 and (run / "report" / "index.html").is_file()
    assert main(["export", str(run), "--out", str(tmp_path / "back")]) == 0
    back = tmp_path / "back" / "org" / "model-a" / f"qa1_0k_{CONFIG}.csv"
    assert [(r["target"], r["output"], r["question"]) for r in csv_rows(back)] == QA1_ROWS


def folder_missing(root: Path) -> Path:
    return root / "no-such-folder"


def column_missing(root: Path) -> Path:
    write_predictions(root / "org" / "m", f"qa1_0k_{CONFIG}.csv", QA1_ROWS)
    write_predictions(root / "org" / "m", f"qa1_1k_{CONFIG}.csv", QA1_ROWS,
                      header=("", "target", "prediction", "question"))
    return root


def name_unparsable(root: Path) -> Path:
    write_predictions(root / "org" / "m", f"qa1_0k_{CONFIG}.csv", QA1_ROWS)
    write_predictions(root / "org" / "m", "qa1_0k_instruction_maybe.csv", QA1_ROWS)
    return root


def length_unparsable(root: Path) -> Path:
    write_predictions(root / "org" / "m", f"qa1_4000_{CONFIG}.csv", QA1_ROWS)
    return root


@pytest.mark.parametrize("make, message", [
    (folder_missing, "no-such-folder: no such folder; give the folder of BABILong predictions"),
    (column_missing, "no output column (found: (unnamed), target, prediction, question); BABILong "
                     "prediction files have the columns target, output, question"),
    (name_unparsable, "qa1_0k_instruction_maybe.csv: file name is not <task>_<length>_<config>.csv"),
    (length_unparsable, "length '4000' is not a length name like 0k, 4k"),
])
def test_bad_input_one_line_and_nothing_written(tmp_path, capsys, make, message):
    pred_dir, run = make(tmp_path / "preds"), tmp_path / "run"
    assert main(["import", str(pred_dir), "--run", str(run)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("babilab: error: ") and "\n" not in err and message in err
    assert captured.out == "" and not run.exists()


def test_changed_files_under_an_imported_label_are_refused(tmp_path, capsys):
    folder, run = tmp_path / "preds" / "org" / "m", tmp_path / "run"
    write_predictions(folder, f"qa1_0k_{CONFIG}.csv", QA1_ROWS)
    assert main(["import", str(folder.parent.parent), "--run", str(run)]) == 0
    stored = sorted(p.read_bytes() for p in run.iterdir() if p.suffix in (".sqlite", ".json"))
    capsys.readouterr()
    write_predictions(folder, f"qa1_0k_{CONFIG}.csv", [(t, "kitchen", q) for t, _, q in QA1_ROWS])
    assert main(["import", str(folder.parent.parent), "--run", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert "already holds predictions of org/m from other files" in err and "\n" not in err
    assert "import into a new run folder" in err
    assert sorted(p.read_bytes() for p in run.iterdir() if p.suffix in (".sqlite", ".json")) == stored
