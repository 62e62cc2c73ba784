"""The effective context length: the longest length up to which every accuracy passes.

Known answers for the rule (relative to the shortest length by default, or absolute), and
that `rescore` and `report` show it with the rule stated.
"""

import pytest

from babilab.cli import main
from babilab.errors import BabilabError
from babilab.runs import RunStore, score_run
from babilab.runs.store import Prediction
from babilab.scoring import EffectiveLength, EffectiveRule, effective_label, effective_length

LENGTHS = ["0k", "1k", "2k", "4k", "8k"]


def curve(*values: float | None, lengths=LENGTHS) -> dict[str, float]:
    return {n: v for n, v in zip(lengths, values, strict=True) if v is not None}


@pytest.mark.parametrize("accuracy, rule, expected", [
    # 85% of 80 is 68: 70 passes, 60 ends it
    (curve(80, 75, 70, 60, 50), EffectiveRule(), EffectiveLength("2k", 68.0, False)),
    # a dip at 2k ends it, though 4k and 8k recover above the threshold
    (curve(80, 75, 50, 79, 80), EffectiveRule(), EffectiveLength("1k", 68.0, False)),
    # every length passes: the longest measured, a lower bound
    (curve(80, 80, 79, 78, 70), EffectiveRule(), EffectiveLength("8k", 68.0, True)),
    # exactly at the threshold passes (85% of 40 is 34.00000000000001 in floating point)
    (curve(40, 34, 33.9, 40, 40), EffectiveRule(), EffectiveLength("1k", 0.85 * 40, False)),
    # no length passes an absolute 50%
    (curve(40, 60, 70, 80, 90), EffectiveRule("absolute", 0.5), EffectiveLength(None, 50.0, False)),
    (curve(90, 60, 50, 49.9, 80), EffectiveRule("absolute", 0.5), EffectiveLength("2k", 50.0, False)),
    # no 0k: the shortest length measured is the reference
    (curve(None, 50, 45, 42, 40), EffectiveRule(), EffectiveLength("2k", 42.5, False)),
    # nothing right at the shortest length: nothing to keep
    (curve(0, 0, 0, 0, 0), EffectiveRule(), EffectiveLength(None, 0.0, False)),
    # a length not measured stops the run as a lower bound: it is not known to pass
    (curve(80, 80, None, 80, 80), EffectiveRule(), EffectiveLength("1k", 68.0, True)),
    ({}, EffectiveRule(), EffectiveLength(None, None, False)),
])
def test_effective_length_known_answers(accuracy, rule, expected):
    assert effective_length(accuracy, LENGTHS, rule) == expected


@pytest.mark.parametrize("found, label", [
    (EffectiveLength("2k", 68.0, False), "2k"),
    (EffectiveLength("8k", 68.0, True), "≥8k"),
    (EffectiveLength(None, 50.0, False), "none"),
])
def test_effective_label(found, label):
    assert effective_label(found.__dict__) == label


def test_rule_parsing_and_words():
    assert EffectiveRule.parse("absolute:0.5") == EffectiveRule("absolute", 0.5)
    assert str(EffectiveRule()) == "relative:0.85"
    assert "at or above 85% of the task's own accuracy at 0k" in EffectiveRule().describe()
    assert "at or above 50% accuracy" in EffectiveRule("absolute", 0.5).describe()
    for text, message in (("0.5", "expected KIND:FRACTION"), ("abs:0.5", "use relative or absolute"),
                          ("absolute:50", "not a fraction")):
        with pytest.raises(BabilabError, match=message):
            EffectiveRule.parse(text)


def store_curve(run, correct_per_length: dict[str, int], n: int = 4) -> None:
    """One model, qa1, `n` samples per length with the given number right."""
    with RunStore(run) as store:
        store.add(Prediction(suite="s", sample_id=f"qa1/{length}/{i}", task="qa1", length=length,
                             prompt_config="c", model="org/m", model_fingerprint="f",
                             target="garden", question="Where is Mary?",
                             output="garden" if i < correct else "kitchen")
                  for length, correct in correct_per_length.items() for i in range(n))


def test_summary_rescore_and_report_show_the_effective_length(tmp_path, capsys):
    run = tmp_path / "run"
    store_curve(run, {"0k": 4, "1k": 4, "2k": 3, "4k": 2})  # 100, 100, 75, 50
    assert score_run(run)["models"]["org/m"]["effective_length"]["qa1"] == {
        "length": "1k", "threshold": 85.0, "at_least": False}
    summary = score_run(run, rule=EffectiveRule("absolute", 0.5))
    assert summary["models"]["org/m"]["effective_length"]["qa1"]["length"] == "4k"
    assert summary["effective_rule"]["rule"] == "absolute:0.5"

    assert main(["rescore", str(run)]) == 0
    out = capsys.readouterr().out
    assert "qa1       100.0   100.0    75.0    50.0         1k" in out
    assert "at or above 85% of the task's own accuracy at 0k" in out
    assert main(["rescore", str(run), "--effective-threshold", "absolute:0.5"]) == 0
    out = capsys.readouterr().out
    assert "      >=4k" in out and "at or above 50% accuracy" in out

    assert main(["report", str(run), "--effective-threshold", "absolute:0.75"]) == 0
    assert "2k" in capsys.readouterr().out
    page = (run / "report" / "index.html").read_text()
    assert "<th>effective length</th>" in page
    assert '<td title="needs 75.0% at every length up to it">2k</td>' in page
    assert "at or above 75% accuracy; a dip ends it even if a longer length recovers" in page


def test_a_bad_threshold_is_one_line_and_exit_2(tmp_path, capsys):
    store_curve(tmp_path / "run", {"0k": 4})
    assert main(["report", str(tmp_path / "run"), "--effective-threshold", "absolute:85"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("babilab: error: ") and "\n" not in err and "absolute:0.5" in err
