"""Bad input to every command: one line that names the problem and the fix, never a
traceback, a non-zero exit, and the folders it was pointed at exactly as they were.

Each case runs one command line against a copy of a small world (a suite, a run of the
oracle on it, a regular file, a folder of published predictions, ...), damaged first where
the case is about damage. The whole world is snapshotted (paths and bytes) before and after:
a refusal may create, change or leave behind nothing, not even an empty folder or a
temporary file. Cases marked `read_only` run with that folder really read-only, root
included (read_only.py); where that cannot be arranged they are skipped, saying why.
"""

from __future__ import annotations

import errno
import json
import os
import shlex
import shutil
import signal
import sqlite3
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import pytest

from babilab.cli import main
from babilab.prompts import PromptConfig
from babilab.runs import evaluate

from .conftest import facts_only_suite
from .read_only import NOT_ENFORCED, read_only, snapshot

CONFIG = PromptConfig().name
CELL = "suite/data/qa1/0k.jsonl"


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """The world every case starts from, built once."""
    root = tmp_path_factory.mktemp("world")
    facts_only_suite(root / "suite", tasks=("qa1",), n=3)
    evaluate(root / "suite", "oracle", root / "run", progress=False)
    (root / "file").write_text("a regular file\n")
    (root / "notes").mkdir()
    (root / "notes" / "keep.txt").write_text("mine\n")
    (root / "locked").mkdir()
    (root / "tok").mkdir()  # a tokenizer folder without tokenizer files
    (root / "tok" / "config.json").write_text("{}\n")
    (root / "book.txt").write_text("Mary went back to the garden where the old trees stood. " * 20)
    model = root / "preds" / "org" / "model"
    model.mkdir(parents=True)
    (model / f"qa1_0k_{CONFIG}.csv").write_text(",target,output,question\n0,garden,garden,Where?\n")
    return root


@pytest.fixture
def world(template, tmp_path) -> Path:
    root = tmp_path / "world"
    shutil.copytree(template, root)
    return root


# --- damage done to the world before a case runs

def put(relative: str, content: str | bytes) -> Callable[[Path], None]:
    def damage(world: Path) -> None:
        path = world / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        text = content.replace("{w}", str(world)) if isinstance(content, str) else content
        path.write_bytes(text.encode() if isinstance(text, str) else text)
    return damage


def truncate(relative: str, keep: int) -> Callable[[Path], None]:
    def damage(world: Path) -> None:
        path = world / relative
        path.write_bytes(path.read_bytes()[:keep])
    return damage


def remove(relative: str) -> Callable[[Path], None]:
    def damage(world: Path) -> None:
        (world / relative).unlink()
    return damage


def edit_row(**changes) -> Callable[[Path], None]:
    """The suite's first sample with some fields changed."""
    def damage(world: Path) -> None:
        path = world / CELL
        first, *rest = path.read_text().splitlines(keepends=True)
        row = {**json.loads(first), **changes}
        path.write_text(json.dumps(row) + "\n" + "".join(rest))
    return damage


def sql(relative: str, *statements: str) -> Callable[[Path], None]:
    def damage(world: Path) -> None:
        path = world / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path)
        with db:
            for statement in statements:
                db.execute(statement)
        db.close()
    return damage


FOREIGN_STORE = sql("foreign/predictions.sqlite", "CREATE TABLE foo (x)")
GARBAGE = b"\x89\xfe\x00binary\xff" * 40


@dataclass(frozen=True)
class Case:
    name: str
    command: str  # `{w}` is the world folder
    problem: str  # what the line must say is wrong
    fix: str  # and what it must say to do
    damage: Callable[[Path], None] | None = None
    read_only: str | None = None  # a folder of the world that is read-only while it runs


GEN = "generate --out {w}/new --tasks qa1 --lengths 0k"
BABI = "babi generate --out {w}/new --tasks qa1 --questions 3"
EVAL = "eval --suite {w}/suite --model oracle --run {w}/new"
UNREACHABLE = "--model openai:m --base-url http://127.0.0.1:9/v1 --retries 0"
RECIPE = "stages: [{segments: 1, steps: 1}]\nout_dir: {w}/trained\n"

CASES = [
    # generate: where the suite goes
    Case("generate out under a file", "generate --out {w}/file/suite --tasks qa1", "is under a file",
         "give --out a folder path"),
    Case("generate out is a file", "generate --out {w}/file --tasks qa1", "is a file",
         "give --out a folder path"),
    Case("generate out holds other files", "generate --out {w}/notes --tasks qa1",
         "exists and is not a suite", "choose an empty folder"),
    Case("generate out read-only", "generate --out {w}/locked/suite --tasks qa1",
         "is not writable", "give --out a folder you can write to", read_only="locked"),
    # generate: what the suite is
    Case("generate no samples", GEN + " --samples 0", "samples", "between 1 and"),
    Case("generate too many samples", GEN + " --samples 100001", "samples", "between 1 and"),
    Case("generate negative seed", GEN + " --seed -1", "seed", "must be >= 0"),
    Case("generate unbounded length", "generate --out {w}/new --lengths 99999999999k",
         "99999999999k is over the longest length", "100M"),
    Case("generate reserve over the length", "generate --out {w}/new --lengths 1k "
         "--reserve-tokens 5000", "leaves no context at 1k", "below the shortest length"),
    Case("generate negative reserve", GEN + " --reserve-tokens -1", "reserve_tokens",
         "must be >= 0"),
    Case("generate bad length", "generate --out {w}/new --lengths 4q", "bad length '4q'",
         "like 0k, 4k, 1M"),
    Case("generate bad task", "generate --out {w}/new --tasks qa99", "unknown task qa99",
         "tasks are qa1..qa20"),
    Case("generate bad split", GEN + " --split dev", "unknown split 'dev'", "splits are"),
    Case("generate bad placement", GEN + " --placement middle", "unknown placement 'middle'",
         "use uniform, spread"),
    Case("generate unknown tokenizer", GEN + " --corpus file:{w}/book.txt --tokenizer nope",
         "unknown tokenizer 'nope'", "use gpt2, cl100k"),
    Case("generate tokenizer folder without files",
         GEN + " --corpus file:{w}/book.txt --tokenizer {w}/tok", "no tokenizer files",
         "give a tokenizer's folder"),
    Case("generate broken tokenizer.json",
         GEN + " --corpus file:{w}/book.txt --tokenizer {w}/tokenizer.json",
         "not a tokenizer that loads", "give a tokenizer's folder",
         damage=put("tokenizer.json", "{broken")),
    Case("generate corpus folder missing", GEN + " --corpus dir:{w}/nowhere", "no such folder",
         "give a folder of .txt books"),
    Case("generate corpus file missing", GEN + " --corpus file:{w}/nowhere.txt", "no such file",
         "give a UTF-8 text file"),
    Case("generate config missing", GEN + " --config {w}/nowhere.yaml", "cannot read",
         "check the path"),
    Case("generate config not YAML", GEN + " --config {w}/gen.yaml", "not valid YAML",
         "fix its syntax", damage=put("gen.yaml", "tasks: [qa1\n")),
    Case("generate config a list", GEN + " --config {w}/gen.yaml", "expected a mapping",
         "option: value", damage=put("gen.yaml", "- qa1\n")),
    Case("generate config unknown option", GEN + " --config {w}/gen.yaml", "sampels: unknown option",
         "the options are", damage=put("gen.yaml", "sampels: 3\n")),
    Case("generate official without out", "generate --official", "--official needs --out",
         "--out"),
    # babi generate
    Case("babi out under a file", "babi generate --out {w}/file/babi --tasks qa1", "is under a file",
         "give --out a folder path"),
    Case("babi out is a file", "babi generate --out {w}/file --tasks qa1", "is a file",
         "give --out a folder path"),
    Case("babi out read-only", "babi generate --out {w}/locked/babi --tasks qa1 --questions 3",
         "is not writable", "give --out a folder you can write to", read_only="locked"),
    Case("babi no questions", "babi generate --out {w}/new --questions 0", "'--questions'",
         "greater than or equal to 1"),
    Case("babi too many questions", "babi generate --out {w}/new --questions 2000000",
         "'--questions'", "less than or equal to 1000000"),
    Case("babi negative seed", BABI + " --seed -1", "'--seed'", "greater than or equal to 0"),
    Case("babi bad task", "babi generate --out {w}/new --tasks qa21", "unknown task qa21",
         "tasks are qa1..qa20"),
    Case("babi bad split", BABI + " --split dev", "unknown split 'dev'", "splits are"),
    # babi stats and check
    Case("babi stats missing path", "babi stats {w}/nowhere", "no such file or folder",
         "give a bAbI file"),
    Case("babi stats not a bAbI name", "babi stats {w}/book.txt", "not a bAbI file name",
         "expected qaN_<name>"),
    Case("babi check binary file", "babi check {w}/babi", "not ASCII text", "bAbI v1.2 files are ASCII",
         damage=put("babi/qa1_single-supporting-fact_test.txt", GARBAGE)),
    Case("babi check bad line", "babi check {w}/babi", "qa1_single-supporting-fact_test.txt:1",
         "expected '<id> <text>'", damage=put("babi/qa1_single-supporting-fact_test.txt", "hello\n")),
    Case("babi check negative show", "babi check {w}/babi --show -1", "'--show'",
         "greater than or equal to 0"),
    # eval: the run folder
    Case("eval run under a file", "eval --suite {w}/suite --model oracle --run {w}/file/run",
         "is under a file", "give --run a folder path"),
    Case("eval run is a file", "eval --suite {w}/suite --model oracle --run {w}/file", "is a file",
         "give --run a folder path"),
    Case("eval run read-only", "eval --suite {w}/suite --model oracle --run {w}/run",
         "is not writable", "give --run a folder you can write to", read_only="run"),
    Case("eval run.json broken", "eval --suite {w}/suite --model oracle --run {w}/run",
         "run.json: unreadable", "fix or delete it", damage=put("run/run.json", "{\n")),
    Case("eval run.json not an object", "eval --suite {w}/suite --model oracle --run {w}/run",
         "expected an object with a `models` object", "fix or delete it",
         damage=put("run/run.json", "[]\n")),
    Case("eval store of another program", "eval --suite {w}/suite --model oracle --run {w}/foreign",
         "not a babilab run store (its tables: foo)", "give a run folder made by",
         damage=FOREIGN_STORE),
    Case("eval store of another format", "eval --suite {w}/suite --model oracle --run {w}/run",
         "run store format 9", "use a new run folder",
         damage=sql("run/predictions.sqlite", "UPDATE meta SET value = '9' WHERE key = 'format'")),
    Case("eval store not SQLite", "eval --suite {w}/suite --model oracle --run {w}/run",
         "not a readable run store", "give a run folder made by",
         damage=put("run/predictions.sqlite", GARBAGE)),
    # eval: the suite
    Case("eval not a suite", "eval --suite {w}/notes --model oracle --run {w}/new",
         "not a babilab suite", "make one with `babilab generate`"),
    Case("eval suite.json without cells", EVAL, "no cells", "rebuild the suite",
         damage=put("suite/suite.json", '{"format": "babilab-suite/1", "fingerprint": "x"}')),
    Case("eval suite.json a list", EVAL, "a list, expected a JSON object", "rebuild the suite",
         damage=put("suite/suite.json", "[1]")),
    Case("eval suite.json truncated", EVAL, "suite.json: unreadable", "rebuild the suite",
         damage=truncate("suite/suite.json", 20)),
    Case("eval suite.json binary", EVAL, "not UTF-8 text", "rebuild the suite",
         damage=put("suite/suite.json", GARBAGE)),
    Case("eval suite of another format", EVAL, "suite format 'babilab-suite/9'",
         "rebuild the suite", damage=put("suite/suite.json", '{"format": "babilab-suite/9"}')),
    Case("eval samples missing", EVAL, "no samples for qa1 at 0k (0k.jsonl is missing)",
         "rebuild the suite", damage=remove(CELL)),
    Case("eval samples truncated", EVAL, "unreadable sample in qa1/0k (line 1",
         "truncated or damaged", damage=truncate(CELL, 100)),
    Case("eval samples binary", EVAL, "not UTF-8 text", "rebuild the suite",
         damage=put(CELL, GARBAGE)),
    Case("eval sample with other fields", EVAL, "no task, length, index, input, question, target",
         "rebuild the suite", damage=put(CELL, '{"foo": 1}\n')),
    Case("eval sample not an object", EVAL, "a list, not an object", "rebuild the suite",
         damage=put(CELL, "[1, 2]\n")),
    Case("eval sample field of another type", EVAL, "index is a string, expected a number",
         "rebuild the suite", damage=edit_row(index="a")),
    Case("eval sample support outside its facts", EVAL, "a supporting id is outside facts",
         "rebuild the suite", damage=edit_row(supporting=[99])),
    # eval: the options
    Case("eval bad mode", EVAL + " --mode bogus", "got 'bogus'", "must be one of babilong, strict"),
    Case("eval batch size 0", EVAL + " --batch-size 0", "batch_size",
         "greater than or equal to 1"),
    Case("eval unknown model", "eval --suite {w}/suite --model bogus --run {w}/new",
         "unknown model type 'bogus'", "Known: "),
    Case("eval model cannot load", "eval --suite {w}/suite --run {w}/new " + UNREACHABLE,
         "cannot reach http://127.0.0.1:9/v1", "is the server running"),
    Case("eval option out of range", "eval --suite {w}/suite --run {w}/new --concurrency 0 "
         + UNREACHABLE, "concurrency", "must be >= 1"),
    Case("eval option the model does not take", EVAL + " --max-new-tokens 3",
         "max_new_tokens does not apply to oracle", "it takes no options"),
    Case("eval bad prompt name", EVAL + " --prompt bogus", "bad prompt configuration 'bogus'",
         "expected e.g."),
    Case("eval no cells left", EVAL + " --tasks qa9", "no samples for the tasks and lengths",
         "choose among its cells: qa1/0k"),
    Case("eval model-arg without value", EVAL + " --model-arg x", "--model-arg 'x'",
         "expected KEY=VALUE"),
    Case("eval no suite", "eval --model oracle --run {w}/new", "no suite", "give --suite"),
    Case("eval run file with unknown key", "eval --config {w}/run.yaml", "sute: unknown key",
         "remove it or fix its spelling",
         damage=put("run.yaml", "sute: x\nsuite: {w}/suite\nrun: {w}/new\nmodels: [oracle]\n")),
    # rescore
    Case("rescore no run", "rescore {w}/nowhere", "not a babilab run", "run `babilab eval` first"),
    Case("rescore store of another program", "rescore {w}/foreign", "its tables: foo",
         "give a run folder made by", damage=FOREIGN_STORE),
    Case("rescore bad mode", "rescore {w}/run --mode bogus", "unknown scoring mode 'bogus'",
         "use --mode babilong or strict"),
    Case("rescore out under a file", "rescore {w}/run --out {w}/file/scores", "is under a file",
         "give --out a folder path"),
    Case("rescore bad threshold", "rescore {w}/run --effective-threshold most",
         "effective-length threshold 'most'", "expected KIND:FRACTION"),
    Case("rescore damaged row", "rescore {w}/run", "prediction row 1 is damaged",
         "evaluate into a new run folder",
         damage=sql("run/predictions.sqlite", "UPDATE predictions SET output = NULL")),
    Case("rescore read-only run without out", "rescore {w}/run", "is not writable",
         "give --out a folder you can write to", read_only="run"),
    # report
    Case("report no run", "report {w}/nowhere", "not a babilab run", "run `babilab eval` first"),
    Case("report out under a file", "report {w}/run --out {w}/file/report", "is under a file",
         "give --out a folder path"),
    Case("report bad mode", "report {w}/run --mode bogus", "unknown scoring mode 'bogus'",
         "use --mode babilong or strict"),
    Case("report store of another program", "report {w}/foreign", "its tables: foo",
         "give a run folder made by", damage=FOREIGN_STORE),
    Case("report run.json broken", "report {w}/run --out {w}/new", "run.json: unreadable",
         "fix or delete it", damage=put("run/run.json", '{"models": ')),
    Case("report run.json note not an object", "report {w}/run --out {w}/new",
         "expected an object with a `models` object", "fix or delete it",
         damage=put("run/run.json", '{"models": {"oracle": 1}}')),
    Case("report read-only run without out", "report {w}/run", "is not writable",
         "give --out a folder you can write to", read_only="run"),
    # export
    Case("export no run", "export {w}/nowhere --out {w}/new", "not a babilab run",
         "run `babilab eval` first"),
    Case("export out under a file", "export {w}/run --out {w}/file/export", "is under a file",
         "give --out a folder path"),
    Case("export out is a file", "export {w}/run --out {w}/file", "is a file",
         "give --out a folder path"),
    Case("export unexpected sample id", "export {w}/run --out {w}/new", "has no sample number",
         "export a run made by", damage=sql("run/predictions.sqlite",
                                            "UPDATE predictions SET sample_id = 'odd'")),
    Case("export store of another format", "export {w}/run --out {w}/new", "run store format 9",
         "use a new run folder",
         damage=sql("run/predictions.sqlite", "UPDATE meta SET value = '9' WHERE key = 'format'")),
    Case("export without out", "export {w}/run", "Missing option", "'--out'"),
    # import
    Case("import no predictions folder", "import {w}/nowhere --run {w}/new", "no such folder",
         "give the folder of BABILong predictions"),
    Case("import run under a file", "import {w}/preds --run {w}/file/run", "is under a file",
         "give --run a folder path"),
    Case("import into a store of another program", "import {w}/preds --run {w}/foreign",
         "its tables: foo", "give a run folder made by", damage=FOREIGN_STORE),
    Case("import run.json broken", "import {w}/preds --run {w}/run", "run.json: unreadable",
         "fix or delete it", damage=put("run/run.json", "{\n")),
    Case("import CSV without the columns", "import {w}/preds --run {w}/new",
         "no target, output, question column", "BABILong prediction files have the columns",
         damage=put(f"preds/org/model/qa1_0k_{CONFIG}.csv", "a,b\n1,2\n")),
    Case("import badly named file", "import {w}/preds --run {w}/new",
         "file name is not <task>_<length>_<config>.csv", "rename it like",
         damage=put("preds/org/model/notes.csv", "target,output,question\n")),
    # export-suite
    Case("export-suite suite.json without cells", "export-suite {w}/suite --out {w}/new",
         "no cells", "rebuild the suite",
         damage=put("suite/suite.json", '{"format": "babilab-suite/1", "fingerprint": "x"}')),
    Case("export-suite sample with other fields", "export-suite {w}/suite --out {w}/new",
         "no task, length", "rebuild the suite", damage=put(CELL, '{"foo": 1}\n')),
    Case("export-suite out under a file", "export-suite {w}/suite --out {w}/file/hub",
         "is under a file", "give --out a folder path"),
    Case("export-suite out read-only", "export-suite {w}/suite --out {w}/locked/hub",
         "is not writable", "give --out a folder you can write to", read_only="locked"),
    # train (configuration only: nothing here loads a model)
    Case("train too many segments", "train {w}/recipe.yaml", "at most 1024",
         "backpropagation through time", damage=put("recipe.yaml", RECIPE.replace("1,", "100000,"))),
    Case("train negative seed", "train {w}/recipe.yaml", "seed", "greater than or equal to 0",
         damage=put("recipe.yaml", RECIPE + "seed: -1\n")),
    Case("train out_dir under a file", "train {w}/recipe.yaml --out-dir {w}/file/trained",
         "is under a file", "give out_dir a folder path", damage=put("recipe.yaml", RECIPE)),
    Case("train recipe missing", "train {w}/nowhere.yaml", "cannot read", "check the path"),
    Case("train unknown key", "train {w}/recipe.yaml", "lr_typo: unknown key",
         "remove it or fix its spelling", damage=put("recipe.yaml", RECIPE + "lr_typo: 1\n")),
    Case("train bad override", "train {w}/recipe.yaml --set nonsense", "override 'nonsense'",
         "expected key=value", damage=put("recipe.yaml", RECIPE)),
]


def run_quietly(argv: list[str], capsys) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of one command line, run in this process."""
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("case", CASES, ids=[c.name.replace(" ", "-") for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(case, world, capsys):
    if case.damage:
        case.damage(world)
    before = snapshot(world)
    argv = shlex.split(case.command.replace("{w}", str(world)))
    with read_only(world / case.read_only) if case.read_only else nullcontext(True) as enforced:
        if not enforced:
            pytest.skip(NOT_ENFORCED)
        code, _, err = run_quietly(argv, capsys)
    assert code != 0
    assert err.count("\n") == 1 and err.startswith("babilab: error: "), err
    assert case.problem in err and case.fix in err, err
    assert "Traceback" not in err and "internal error" not in err
    assert snapshot(world) == before


def test_the_table_covers_every_command():
    commands = {c.command.split()[0] if not c.command.startswith("babi ")
                else " ".join(c.command.split()[:2]) for c in CASES}
    assert commands == {"generate", "babi generate", "babi stats", "babi check", "eval",
                        "rescore", "report", "export", "import", "export-suite", "train"}
    assert len(CASES) >= 60


# --- stopped by a signal: one line saying so and what is kept

def test_sigterm_says_it_stopped_and_leaves_no_half_written_folder(world, capsys, monkeypatch):
    from babilab.babi import generate as babi_generate

    def stopped(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM did not stop the command")

    monkeypatch.setattr(babi_generate, "format_stories", stopped)
    before = snapshot(world)
    code, _, err = run_quietly(["babi", "generate", "--out", str(world / "new" / "babi")], capsys)
    assert code == 130
    assert err == ("babilab: babi generate stopped by SIGTERM; nothing half-written is left; "
                   "run the same command again\n")
    assert snapshot(world) == before


def test_sigterm_during_eval_keeps_the_stored_predictions(world, capsys, monkeypatch):
    from babilab.models.oracle import OracleAnswerer

    answer, calls = OracleAnswerer.answer, []

    def answer_then_stop(self, requests, config):
        calls.append(len(requests))
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return answer(self, requests, config)

    monkeypatch.setattr(OracleAnswerer, "answer", answer_then_stop)
    run = world / "new"
    code, _, err = run_quietly(["eval", "--suite", str(world / "suite"), "--model", "oracle",
                                "--run", str(run), "--batch-size", "1"], capsys)
    assert code == 130
    assert err.splitlines()[-1] == ("babilab: eval stopped by SIGTERM; the predictions stored so "
                                    "far are kept; the same command continues from them")
    monkeypatch.setattr(OracleAnswerer, "answer", answer)
    code, out, _ = run_quietly(["eval", "--suite", str(world / "suite"), "--model", "oracle",
                                "--run", str(run)], capsys)
    assert code == 0
    assert "oracle: 2 new predictions, 1 already stored, 0 failed" in out


# --- failures no input check can foresee: still one line, still nothing half-written

def test_a_full_disk_midway_is_one_line_and_leaves_no_temporary_file(world, capsys, monkeypatch):
    from babilab.runs import results

    def full(path, scored):
        Path(path).write_text("scores cut sh")
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(results, "write_scores", full)
    before = snapshot(world)
    code, _, err = run_quietly(["rescore", str(world / "run")], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "no space left on device; free some space" in err
    assert snapshot(world) == before  # the old files stay whole, no temporary file beside them


def test_a_bug_is_one_line_that_asks_for_a_report(world, capsys, monkeypatch):
    from babilab.runs import results

    def broken(*args, **kwargs):
        raise TypeError("something no check foresaw")

    monkeypatch.setattr(results, "summarize", broken)
    monkeypatch.delenv("BABILAB_TRACEBACK", raising=False)
    code, _, err = run_quietly(["rescore", str(world / "run"), "--out", str(world / "new")], capsys)
    assert code == 1 and err.count("\n") == 1
    assert "internal error (TypeError: something no check foresaw); please report it" in err
    assert not (world / "new").exists()
