"""The run store: keys, replace-on-retry, clear errors, and evaluation that resumes."""

import sqlite3

import pytest

from babilab.errors import BabilabError
from babilab.prompts import PromptConfig
from babilab.runs import RunStore, evaluate, export_babilong, score_run
from babilab.runs.store import Prediction, prediction_key


def make(output="garden", error=None, **kw):
    base = dict(suite="s", sample_id="qa1/0k/0", task="qa1", length="0k", prompt_config="c",
                model="m", model_fingerprint="f", target="garden", question="Where is Mary?",
                output=output, error=error)
    return Prediction(**{**base, **kw})


def test_key_covers_suite_sample_prompt_and_model():
    base = prediction_key("s", "qa1/0k/0", "c", "f")
    assert base == make().key
    for changed in (make(suite="t"), make(sample_id="qa1/0k/1"), make(prompt_config="d"),
                    make(model_fingerprint="g")):
        assert changed.key != base
    assert make(output="other", model="renamed").key == base  # labels and outputs are not identity


def test_errors_are_retried_and_replaced(tmp_path):
    with RunStore(tmp_path) as store:
        store.add([make(output="", error="HTTP 503")])
        assert store.done_keys() == set()
        store.add([make()])
        assert store.count() == 1
        assert store.done_keys() == {make().key}
        assert next(store.predictions()).error is None


def test_not_a_run_and_corrupt_store(tmp_path):
    with pytest.raises(BabilabError, match="not a babilab run"):
        RunStore(tmp_path / "nothing", create=False)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "predictions.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(BabilabError, match="not a readable run store"):
        RunStore(tmp_path / "bad")


def test_evaluate_resumes_and_never_duplicates(small_suite, tmp_path):
    run = tmp_path / "run"
    first = evaluate(small_suite, "oracle", run, tasks=["qa1"])
    assert (first.new, first.skipped) == (10, 0)
    second = evaluate(small_suite, "oracle", run)
    assert (second.new, second.skipped) == (20, 10)
    again = evaluate(small_suite, "oracle", run)
    assert (again.new, again.skipped) == (0, 30)
    two_configs = [PromptConfig(), PromptConfig(False, False, False, False)]
    more = evaluate(small_suite, "oracle", run, configs=two_configs)
    assert (more.new, more.skipped) == (30, 30)
    with sqlite3.connect(run / "predictions.sqlite") as db:
        assert db.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM predictions").fetchone() == (60, 60)


def test_oracle_scores_100_in_both_modes(small_suite, tmp_path):
    evaluate(small_suite, "oracle", tmp_path / "run")
    for mode in ("babilong", "strict"):
        summary = score_run(tmp_path / "run", mode)["models"]["oracle"]
        assert {c["accuracy"] for c in summary["cells"].values()} == {100.0}
        assert (tmp_path / "run" / f"scores_{mode}.csv").exists()


def test_export_layout(small_suite, tmp_path):
    evaluate(small_suite, "oracle", tmp_path / "run", tasks=["qa4"])
    files = export_babilong(tmp_path / "run", tmp_path / "out")
    name = PromptConfig().name
    assert [f.relative_to(tmp_path / "out").as_posix() for f in files] == [f"oracle/qa4_0k_{name}.csv"]
    lines = files[0].read_text().splitlines()
    assert lines[0] == ",target,output,question" and len(lines) == 11
    assert lines[1].startswith("0,")


def test_bad_inputs(small_suite, tmp_path):
    with pytest.raises(BabilabError, match="not a babilab suite"):
        evaluate(tmp_path, "oracle", tmp_path / "run")
    with pytest.raises(BabilabError, match="unknown model type 'oracel'; did you mean 'oracle'"):
        evaluate(small_suite, "oracel", tmp_path / "run")
    with pytest.raises(BabilabError, match="does not apply"):
        evaluate(small_suite, "oracle", tmp_path / "run", base_url="http://x")
    with pytest.raises(BabilabError, match="no samples"):
        evaluate(small_suite, "oracle", tmp_path / "run", lengths=["128k"])
