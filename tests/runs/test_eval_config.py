"""`babilab eval` at scale: --model-arg options, run files (--config) and progress in a log."""

import importlib
import io
import os
import re
from pathlib import Path

import pytest
import yaml

from babilab.cli import main
from babilab.models.base import Answer, Answerer, fingerprint_of, register
from babilab.runs import RunStore, progress
from babilab.runs.eval_config import parse_model_args
from babilab.runs.progress import LogProgress, progress_kind, quiet_weight_loading

EXAMPLE = Path(__file__).parents[2] / "examples" / "eval_run.yaml"


@register("options_probe")
class OptionsProbe(Answerer):
    """Answers with the options it was built with, and remembers them: what reached it."""

    built: list[dict] = []

    def __init__(self, word: str, max_new_tokens: int = 20, shout: bool = False):
        self.word, self.options = word, {"max_new_tokens": max_new_tokens, "shout": shout}
        OptionsProbe.built.append(self.options)

    @classmethod
    def from_spec(cls, arg: str = "", **options) -> "OptionsProbe":
        return cls(arg, **options)

    @property
    def label(self) -> str:
        return f"probe-{self.word}"

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(backend="probe", word=self.word, **self.options)

    def answer(self, requests, config):
        return [Answer(str(self.options["max_new_tokens"])) for _ in requests]


@pytest.fixture(autouse=True)
def forget_probes(monkeypatch):
    monkeypatch.setattr(OptionsProbe, "built", [])
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # keep weight-bar switches out


def eval_args(suite, run, *more):
    return ["eval", "--suite", str(suite.path), "--run", str(run), *more]


def stored_models(run: Path) -> dict[str, set[str]]:
    """label -> the tasks it has predictions for."""
    with RunStore(run, create=False) as store:
        found: dict[str, set[str]] = {}
        for p in store.predictions():
            found.setdefault(p.model, set()).add(p.task)
        return found


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


# --- --model-arg

def test_model_args_are_read_as_yaml():
    assert parse_model_args(["max_new_tokens=32", "shout=true", "lr=1e-4", "mode=chat", "x="]) == \
        {"max_new_tokens": 32, "shout": True, "lr": 1e-4, "mode": "chat", "x": None}


def test_model_arg_reaches_the_answerer(small_suite, tmp_path, capsys):
    code = main(eval_args(small_suite, tmp_path / "run", "--model", "options_probe:a",
                          "--model-arg", "max_new_tokens=7", "--model-arg", "shout=yes"))
    assert code == 0, capsys.readouterr().err
    assert OptionsProbe.built == [{"max_new_tokens": 7, "shout": True}]
    record = yaml.safe_load((tmp_path / "run" / "eval_config.yaml").read_text())
    assert record["models"] == [{"model": "options_probe:a",
                                 "options": {"max_new_tokens": 7, "shout": True}}]


@pytest.mark.parametrize(("model", "message"), [
    ("oracle", "option foo does not apply to oracle models; it takes no options"),
    # hf:no-such-model would fail to load: the option is refused before any load is tried
    ("hf:no-such-model", "option foo does not apply to hf models; it takes attn_implementation, "
                         "batch_size, device, device_map, dtype, max_batch_tokens, max_new_tokens, "
                         "threads, truncate"),
])
def test_unknown_option_is_one_line_and_writes_nothing(small_suite, tmp_path, capsys, model, message):
    code = main(eval_args(small_suite, tmp_path / "run", "--model", model, "--model-arg", "foo=1"))
    assert code == 2
    assert capsys.readouterr().err == f"babilab: error: {message}\n"
    assert not (tmp_path / "run").exists()


def test_a_key_given_by_a_flag_and_a_model_arg_is_refused(small_suite, tmp_path, capsys):
    code = main(eval_args(small_suite, tmp_path / "run", "--model", "options_probe:a",
                          "--max-new-tokens", "4", "--model-arg", "max_new_tokens=5"))
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "max_new_tokens is given twice, by --max-new-tokens" in err
    assert OptionsProbe.built == [] and not (tmp_path / "run").exists()


# --- --config

def test_the_example_run_file_runs(small_suite, tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["eval", "--config", str(EXAMPLE), "--suite", str(small_suite.path), "--run", str(run)])
    assert code == 0, capsys.readouterr().err
    assert stored_models(run) == {"oracle": {"qa1"}, "last-place": {"qa1"}}
    record = yaml.safe_load((run / "eval_config.yaml").read_text())
    assert record["suite"] == str(small_suite.path) and record["run"] == str(run)  # overridden
    assert [m["model"] for m in record["models"]] == ["oracle", "heuristic:last-place"]


def test_run_file_with_two_models_their_options_and_overrides(small_suite, tmp_path, capsys):
    run = tmp_path / "run"
    config = write_yaml(tmp_path / "run.yaml", {
        "suite": str(small_suite.path), "run": str(tmp_path / "elsewhere"), "tasks": "qa1,qa2",
        "models": [{"model": "options_probe:a", "options": {"max_new_tokens": 3}},
                   "options_probe:b"]})
    code = main(["eval", "--config", str(config), "--run", str(run), "--tasks", "qa2",
                 "--mode", "strict", "--model-arg", "shout=true"])
    assert code == 0, capsys.readouterr().err
    # each model keeps its own options; the command line's go to every model
    assert OptionsProbe.built == [{"max_new_tokens": 3, "shout": True},
                                  {"max_new_tokens": 20, "shout": True}]
    assert stored_models(run) == {"probe-a": {"qa2"}, "probe-b": {"qa2"}}
    assert not (tmp_path / "elsewhere").exists()
    record = yaml.safe_load((run / "eval_config.yaml").read_text())
    assert record["tasks"] == ["qa2"] and record["mode"] == "strict" and record["run"] == str(run)
    assert (run / "summary_strict.json").exists()
    # the record runs again as it is, with nothing left to do
    OptionsProbe.built.clear()
    assert main(["eval", "--config", str(run / "eval_config.yaml")]) == 0
    assert "0 new predictions, 10 already stored" in capsys.readouterr().out


@pytest.mark.parametrize(("data", "message"), [
    ({"models": [{"model": "oracle", "foo": 1}]}, "models.0.foo: unknown key"),
    ({"models": ["oracle"], "sute": "x"}, "sute: unknown key"),
    ({"models": ["oracle", {"model": "oracle", "options": {"foo": 1}}]},
     "models.1: option foo does not apply to oracle models; it takes no options"),
    ({"models": ["oracle"], "prompts": ["bad_name"]}, "prompts: bad prompt configuration"),
    ({"models": []}, "no models: give --model or `models:` in the file"),
])
def test_bad_run_files_are_one_line_and_write_nothing(small_suite, tmp_path, capsys, data, message):
    config = write_yaml(tmp_path / "run.yaml",
                        {"suite": str(small_suite.path), "run": str(tmp_path / "run"), **data})
    assert main(["eval", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"babilab: error: {config}: {message}") and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


# --- progress in a log

LINE = re.compile(r"eval oracle: (\d+)/10 samples \(\d+%\), ([\d.]+|inf) samples/s, (\S+ left|done in \S+)")


def test_progress_lines_when_stderr_is_not_a_terminal(small_suite, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(progress, "LOG_INTERVAL_S", 0)
    code = main(eval_args(small_suite, tmp_path / "run", "--model", "oracle", "--tasks", "qa1",
                          "--batch-size", "4"))
    assert code == 0
    lines = capsys.readouterr().err.splitlines()
    found = [LINE.fullmatch(line) for line in lines]
    assert all(found), lines
    assert [int(m[1]) for m in found] == [4, 8, 10]  # a line per batch, then the last one
    assert found[-1][3].startswith("done in")


def test_log_lines_wait_for_the_interval():
    out = io.StringIO()
    with LogProgress(100, "eval x", interval_s=3600, stream=out) as bar:
        for _ in range(10):
            bar.update(10)
    assert out.getvalue().count("\n") == 1  # only the closing line
    out = io.StringIO()
    with LogProgress(0, "eval x", interval_s=0, stream=out):
        pass
    assert out.getvalue() == ""  # nothing to do, nothing to say


def test_bars_on_a_terminal_lines_in_a_log(monkeypatch):
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    assert (progress_kind(None), progress_kind(False)) == ("bar", "off")
    monkeypatch.setattr("sys.stderr.isatty", lambda: False)
    assert (progress_kind(None), progress_kind(True)) == ("lines", "bar")


def test_no_weight_loading_bars_in_a_log(monkeypatch):
    from transformers.utils import logging as transformers_logging

    hub_tqdm = importlib.import_module("huggingface_hub.utils.tqdm")  # the module, not the class

    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS")
    # bars on, in state that monkeypatch puts back, so the rest of the session keeps its own
    monkeypatch.setattr(transformers_logging, "_tqdm_active", True)
    monkeypatch.setattr(hub_tqdm, "progress_bar_states", {})
    quiet_weight_loading()
    assert not transformers_logging.is_progress_bar_enabled()  # "Loading weights" bars
    assert hub_tqdm.progress_bar_states == {"_global": False}  # download bars
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"  # for a process that imports later
