"""rescore, report and export on a run folder nobody may write to (a shared results folder, a
mounted archive): with --out elsewhere they work, give what they give on a writable copy,
and leave the run byte-identical (no SQLite -shm or -wal file either). Also: names read
from a store never make export write outside --out.

The read-only cases need the folder to really refuse writes, which read_only.py arranges
even as root; where it cannot, only those cases are skipped and the byte-identical checks
on a writable run still run.
"""

from __future__ import annotations

import shutil
import sqlite3

import pytest

from babilab.cli import main
from babilab.prompts import PromptConfig
from babilab.runs import RunStore, evaluate
from babilab.runs.store import Prediction

from .conftest import facts_only_suite
from .read_only import NOT_ENFORCED, read_only, snapshot

CONFIG = PromptConfig().name
COMMANDS = {  # command -> the files it writes under --out
    "rescore": ["scores_babilong.csv", "summary_babilong.json"],
    "rescore --mode strict": ["scores_strict.csv", "summary_strict.json"],
    "report": ["index.html", "summary_babilong.json", "oracle_babilong_task_by_length.csv"],
    "export": [f"oracle/qa1_0k_{CONFIG}.csv", f"oracle/qa2_0k_{CONFIG}.csv"],
}


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    root = tmp_path_factory.mktemp("read_only")
    facts_only_suite(root / "suite", tasks=("qa1", "qa2"), n=4)
    evaluate(root / "suite", "oracle", root / "run", progress=False)
    return root / "run"


@pytest.fixture
def run(template, tmp_path):
    return shutil.copytree(template, tmp_path / "run")


def command_line(command: str, run, out) -> list[str]:
    verb, *options = command.split()
    return [verb, str(run), *options, "--out", str(out)]


@pytest.mark.parametrize("command", COMMANDS)
def test_works_on_a_read_only_run_with_out_elsewhere(command, run, tmp_path, capsys):
    before = snapshot(run)
    with read_only(run) as enforced:
        if not enforced:
            pytest.skip(NOT_ENFORCED)
        code = main(command_line(command, run, tmp_path / "out"))
    assert code == 0, capsys.readouterr().err
    assert snapshot(run) == before
    for name in COMMANDS[command]:
        assert (tmp_path / "out" / name).is_file(), name


@pytest.mark.parametrize("command", COMMANDS)
def test_reads_a_run_without_writing_to_it_and_as_from_a_writable_one(command, run, tmp_path):
    """No enforcement needed: the run is compared byte for byte, and what a read-only
    reading gives is what the writable copy gives."""
    writable = shutil.copytree(run, tmp_path / "writable")
    before = snapshot(run)
    assert main(command_line(command, run, tmp_path / "a")) == 0
    assert snapshot(run) == before  # not even a -shm or -wal file appeared
    assert main(command_line(command, writable, tmp_path / "b")) == 0
    for name in COMMANDS[command]:
        if name.endswith((".csv", ".json")):
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_a_read_only_run_with_uncommitted_writes_is_one_clear_line(run, tmp_path, capsys):
    """A -wal file holding commits (a run killed mid-eval, copied as it was) cannot be read
    without its -shm in a read-only folder: say so, and that a writable copy will do."""
    db = sqlite3.connect(run / "predictions.sqlite")
    db.execute("PRAGMA wal_autocheckpoint=0")  # keep the commit in the -wal
    with db:
        db.execute("UPDATE predictions SET output = 'kitchen'")
    shutil.copy(run / "predictions.sqlite-wal", tmp_path / "wal")
    db.close()  # checkpoints and removes the -wal; put the copy back, as a crash leaves it
    shutil.copy(tmp_path / "wal", run / "predictions.sqlite-wal")
    before = snapshot(run)
    with read_only(run) as enforced:
        if not enforced:
            pytest.skip(NOT_ENFORCED)
        code = main(["rescore", str(run), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "holds predictions not yet in the store" in err and "writable" in err
    assert snapshot(run) == before and not (tmp_path / "out").exists()


def test_export_keeps_every_name_from_the_store_inside_out(tmp_path):
    """A label is written by whoever made the store (`openai:..` is labelled `..`): no
    model, task, length or configuration name may climb out of --out."""
    run, out = tmp_path / "run", tmp_path / "deep" / "out"
    names = [("..", "qa1", "0k", CONFIG), ("a/../../b", "qa1", "0k", CONFIG),
             ("m", "qa1", "../../x", CONFIG), ("n", "qa1", "0k", "../../../y")]
    with RunStore(run) as store:
        store.add([Prediction(suite="s", sample_id=f"{task}/{length}/0", task=task,
                              length=length, prompt_config=config, model=model,
                              model_fingerprint=f"f{i}", target="garden", question="Where?",
                              output="garden")
                   for i, (model, task, length, config) in enumerate(names)])
    outside = snapshot(tmp_path)
    assert main(["export", str(run), "--out", str(out)]) == 0
    written = {p for p in snapshot(tmp_path) if p not in outside}
    assert written and all(p == "deep" or p.startswith("deep/out") for p in written), written
    assert (out / "__").is_dir()  # `..` as a folder name of its own
