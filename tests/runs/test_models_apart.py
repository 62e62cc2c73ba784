"""One model label run with two decoding settings is two models, never one pooled cell.

The store keys predictions by the answerer's fingerprint (model and decoding settings), so
the same label can hold several; the scored summary must keep them apart too: pooled, 2
samples answered under two settings would read as n=4 and 25% instead of 50% and 0%.
"""

import csv

from babilab.runs import RunStore, export_babilong, score_run
from babilab.runs.store import Prediction

GREEDY, SAMPLED, OTHER = "a1b2c3d4e5f60718", "f0e1d2c3b4a59687", "0123456789abcdef"


def prediction(fingerprint: str, index: int, output: str, model: str = "org/m") -> Prediction:
    return Prediction(suite="s", sample_id=f"qa1/0k/{index}", task="qa1", length="0k",
                      prompt_config="c", model=model, model_fingerprint=fingerprint,
                      target="garden", question="Where is Mary?", output=output)


def store_two_settings(run) -> None:
    """org/m: greedy decoding gets 1 of 2 right, sampled decoding 0 of 2; other/x: one setting."""
    with RunStore(run) as store:
        store.add([prediction(GREEDY, 0, "garden"), prediction(GREEDY, 1, "kitchen"),
                   prediction(SAMPLED, 0, "office"), prediction(SAMPLED, 1, "kitchen"),
                   prediction(OTHER, 0, "garden", model="other/x")])


def test_two_fingerprints_of_one_label_are_two_models(tmp_path):
    store_two_settings(tmp_path)
    models = score_run(tmp_path)["models"]
    assert set(models) == {"org/m@a1b2c3d4", "org/m@f0e1d2c3", "other/x"}
    greedy, sampled = models["org/m@a1b2c3d4"], models["org/m@f0e1d2c3"]
    assert (greedy["cells"]["qa1/0k"]["n"], greedy["cells"]["qa1/0k"]["accuracy"]) == (2, 50.0)
    assert (sampled["cells"]["qa1/0k"]["n"], sampled["cells"]["qa1/0k"]["accuracy"]) == (2, 0.0)
    assert (greedy["label"], greedy["fingerprint"]) == ("org/m", GREEDY)
    assert (sampled["label"], sampled["fingerprint"]) == ("org/m", SAMPLED)
    # a label with one fingerprint keeps its plain name
    assert models["other/x"]["cells"]["qa1/0k"]["n"] == 1


def test_export_and_scores_keep_two_fingerprints_apart(tmp_path):
    store_two_settings(tmp_path / "run")
    written = export_babilong(tmp_path / "run", tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in written) == [
        "org/m@a1b2c3d4/qa1_0k_c.csv", "org/m@f0e1d2c3/qa1_0k_c.csv", "other/x/qa1_0k_c.csv"]
    score_run(tmp_path / "run")
    with open(tmp_path / "run" / "scores_babilong.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["model"], r["model_fingerprint"], r["sample_id"]) for r in rows
                  if r["model"] == "org/m") == [("org/m", f, f"qa1/0k/{i}")
                                                for f in (GREEDY, SAMPLED) for i in (0, 1)]
