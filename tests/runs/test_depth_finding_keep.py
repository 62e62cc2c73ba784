"""experiments/depth_finding.py keeps its grid's predictions in the repository and restores
them into a run on a machine without the cache: the round trip must be exact."""

import importlib.util
from pathlib import Path

from babilab.runs.store import Prediction, RunStore

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "depth_finding.py"


def load_script():
    spec = importlib.util.spec_from_file_location("depth_finding", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prediction(i: int, placement: str | None) -> Prediction:
    return Prediction(suite="s" * 64, sample_id=f"qa1/1k/{i}", task="qa1", length="1k",
                      prompt_config="default", model="smollm2", model_fingerprint="f" * 16,
                      target="kitchen", question="Where is Mary?", output=f"answer {i}",
                      elapsed_s=0.5 + i, prompt_tokens=900 + i, over_window=i == 2,
                      depth=25.0, extra={"n": i} if i else None,
                      support_depths=(12.5, 37.5) if i else None, placement=placement)


def test_kept_predictions_restore_exactly_and_once(tmp_path):
    script = load_script()
    ours = [prediction(i, "depth:25") for i in range(3)]
    with RunStore(tmp_path / "run") as store:
        store.add([*ours, prediction(9, None)])  # an imported model's: not kept
    keep = tmp_path / "kept.jsonl"
    script.keep_predictions(tmp_path / "run", keep)
    assert len(keep.read_text().splitlines()) == 3

    script.restore_predictions(tmp_path / "fresh", keep, {"s" * 64})
    script.restore_predictions(tmp_path / "fresh", keep, {"s" * 64})  # adds nothing more
    with RunStore(tmp_path / "fresh", create=False) as store:
        assert list(store.predictions()) == ours
    again = tmp_path / "again.jsonl"
    script.keep_predictions(tmp_path / "fresh", again)
    assert again.read_bytes() == keep.read_bytes()


def test_predictions_of_other_suites_are_not_restored(tmp_path):
    script = load_script()
    with RunStore(tmp_path / "run") as store:
        store.add([prediction(1, "depth:25")])
    script.keep_predictions(tmp_path / "run", tmp_path / "kept.jsonl")
    script.restore_predictions(tmp_path / "fresh", tmp_path / "kept.jsonl", {"t" * 64})
    with RunStore(tmp_path / "fresh", create=False) as store:
        assert store.count() == 0


def test_no_kept_file_restores_nothing(tmp_path):
    load_script().restore_predictions(tmp_path / "run", tmp_path / "absent.jsonl", {"s" * 64})
    assert not (tmp_path / "run").exists()
