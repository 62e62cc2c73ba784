"""`babilab export-suite`: a suite in RMT-team/babilong's hub layout, loaded back with `datasets`."""

import json

import pytest
import yaml

from babilab.cli import main
from babilab.suite import GenerateConfig, Sample, SuiteWriter, generate_suite

datasets = pytest.importorskip("datasets")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A generated suite (books, positions) and its export through the command line."""
    root = tmp_path_factory.mktemp("export")
    cfg = GenerateConfig(tasks="qa1,qa2", lengths="0k,1k", samples=3, seed=0)
    suite = generate_suite(cfg, root / "suite", progress=False)
    assert main(["export-suite", str(suite.path), "--out", str(root / "hub")]) == 0
    return suite, root / "hub"


def card_header(folder) -> dict:
    text = (folder / "README.md").read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_every_sample_loads_back_by_length_and_task(exported, tmp_path):
    suite, hub = exported
    for length in ("0k", "1k"):
        loaded = datasets.load_dataset(str(hub), length, cache_dir=str(tmp_path / "cache"))
        assert sorted(loaded) == ["qa1", "qa2"]
        for task in ("qa1", "qa2"):
            rows = loaded[task].to_list()
            samples = list(suite.samples(task, length))
            assert [(r["input"], r["question"], r["target"]) for r in rows] == \
                [(s.input, s.question, s.target) for s in samples]
            for row, sample in zip(rows, samples, strict=True):
                assert row["sample_id"] == sample.sample_id
                assert row["facts"] == list(sample.facts)
                assert row["fact_char_offsets"] == list(sample.fact_char_offsets)
                assert row["fact_depths"] == list(sample.fact_depths)
                assert row["support_depth"] == sample.support_depth
                assert row["books"] == sample.meta["books"]
                assert bool(row["books"]) == (length != "0k")  # 0k is facts alone
                assert json.loads(row["meta"]) == sample.meta


def test_card_lists_every_config_and_split(exported):
    suite, hub = exported
    header = card_header(hub)
    assert header["license"] == "apache-2.0"
    configs = {c["config_name"]: c["data_files"] for c in header["configs"]}
    assert list(configs) == ["0k", "1k"]
    for files in configs.values():
        assert [f["split"] for f in files] == ["qa1", "qa2"]
        assert all((hub / f["path"]).is_file() for f in files)
    body = (hub / "README.md").read_text()
    assert suite.fingerprint in body and "babilab generate --tasks qa1,qa2 --lengths 0k,1k" in body
    assert json.loads((hub / "babilab-suite.json").read_text()) == suite.info


def test_save_to_disk_round_trip(exported, tmp_path):
    _, hub = exported
    loaded = datasets.load_dataset(str(hub), "1k", cache_dir=str(tmp_path / "cache"))
    loaded.save_to_disk(str(tmp_path / "saved"))
    again = datasets.load_from_disk(str(tmp_path / "saved"))
    assert isinstance(again, datasets.DatasetDict) and sorted(again) == ["qa1", "qa2"]
    for task in again:
        assert again[task].to_list() == loaded[task].to_list()


def test_a_cell_with_every_question_dropped_has_no_split(tmp_path):
    sample = Sample("qa1", "0k", 0, "Mary went to the garden.", "Where is Mary?", "garden")
    with SuiteWriter(tmp_path / "suite", {"fingerprint": "f" * 64, "config": {}}) as w:
        w.add_cell("qa1", "0k", [sample])
        w.add_cell("qa2", "0k", [], dropped=3)  # `datasets` cannot load an empty split
    assert main(["export-suite", str(tmp_path / "suite"), "--out", str(tmp_path / "hub")]) == 0
    assert [f["split"] for f in card_header(tmp_path / "hub")["configs"][0]["data_files"]] == ["qa1"]
    loaded = datasets.load_dataset(str(tmp_path / "hub"), "0k", cache_dir=str(tmp_path / "cache"))
    assert list(loaded) == ["qa1"] and loaded["qa1"][0]["target"] == "garden"
    assert "0 (no split)" in (tmp_path / "hub/README.md").read_text()


@pytest.mark.parametrize("case, message", [
    ("not-a-suite", "not a babilab suite"),
    ("out-not-empty", "exists and is not empty"),
    ("out-is-a-file", "is a file"),
    ("out-under-a-file", "is under a file"),
])
def test_bad_input_one_line_nothing_written(exported, tmp_path, capsys, case, message):
    suite, _ = exported
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    (tmp_path / "file").write_text("mine")
    source, out = {
        "not-a-suite": (tmp_path / "full", tmp_path / "hub"),
        "out-not-empty": (suite.path, tmp_path / "full"),
        "out-is-a-file": (suite.path, tmp_path / "file"),
        "out-under-a-file": (suite.path, tmp_path / "file" / "sub" / "hub"),
    }[case]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    capsys.readouterr()
    assert main(["export-suite", str(source), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert (tmp_path / "file").read_text() == "mine"


def test_a_failure_midway_leaves_nothing(tmp_path, capsys):
    sample = Sample("qa1", "0k", 0, "Mary went to the garden.", "Where is Mary?", "garden")
    with SuiteWriter(tmp_path / "suite", {"fingerprint": "f" * 64, "config": {}}) as w:
        w.add_cell("qa1", "0k", [sample])
        w.add_cell("qa2", "0k", [sample])
    (tmp_path / "suite/data/qa2/0k.jsonl").write_text("{broken\n")
    before = sorted(tmp_path.rglob("*"))
    assert main(["export-suite", str(tmp_path / "suite"), "--out", str(tmp_path / "new/deep/hub")]) == 2
    assert "unreadable sample in qa2/0k" in capsys.readouterr().err
    assert sorted(tmp_path.rglob("*")) == before  # no hub, no temporary folder, no parents
