"""Suites: exact lengths, positions, determinism, the fingerprint, drops and clean failures."""

import json

import pytest

from babilab.cli import main
from babilab.errors import BabilabError
from babilab.haystack import load_tokenizer
from babilab.suite import GenerateConfig, Suite, generate_suite, parse_length, suite_fingerprint


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    cfg = GenerateConfig(tasks="qa1,qa2", lengths="0k,1k,4k", samples=4, seed=0)
    return generate_suite(cfg, tmp_path_factory.mktemp("suites") / "a", progress=False)


def test_cells_and_same_questions_at_every_length(suite):
    assert suite.cells() == [("qa1", "0k"), ("qa1", "1k"), ("qa1", "4k"),
                             ("qa2", "0k"), ("qa2", "1k"), ("qa2", "4k")]
    for task in ("qa1", "qa2"):
        by_length = [[(s.question, s.target, s.facts) for s in suite.samples(task, n)]
                     for n in ("0k", "1k", "4k")]
        assert by_length[0] == by_length[1] == by_length[2]


def test_exact_token_counts_and_positions(suite):
    gpt2 = load_tokenizer("gpt2")
    for sample in suite:
        n_tokens = len(gpt2.encode([sample.input])[0])
        want = max(parse_length(sample.length) - 300, 0)
        if sample.length != "0k":
            assert n_tokens == sample.context_tokens == want
        for fact, offset in zip(sample.facts, sample.fact_char_offsets, strict=True):
            assert sample.input[offset:offset + len(fact)] == fact
        assert list(sample.fact_char_offsets) == sorted(sample.fact_char_offsets)  # story order
        assert all(0 <= d <= 100 for d in sample.fact_depths)


def test_same_inputs_same_bytes_other_seed_other_haystack(suite, tmp_path):
    cfg = GenerateConfig(**suite.info["config"])
    again = generate_suite(cfg, tmp_path / "b", progress=False)
    for cell in ("data/qa2/4k.jsonl", "data/qa1/1k.jsonl"):
        assert (again.path / cell).read_bytes() == (suite.path / cell).read_bytes()
    other = generate_suite(cfg.model_copy(update={"seed": 1}), tmp_path / "c", progress=False)
    assert other.fingerprint != suite.fingerprint
    assert next(other.samples("qa1", "4k")).input != next(suite.samples("qa1", "4k")).input


def test_second_request_is_a_cache_hit(suite):
    before = (suite.path / "data/qa1/4k.jsonl").stat().st_mtime_ns
    generate_suite(GenerateConfig(**suite.info["config"]), suite.path, progress=False)
    assert (suite.path / "data/qa1/4k.jsonl").stat().st_mtime_ns == before


def test_parquet_is_readable_by_datasets(suite):
    from datasets import load_dataset

    ds = load_dataset("parquet", data_files=str(suite.path / "data/qa1/4k.parquet"))["train"]
    first = next(suite.samples("qa1", "4k"))
    assert ds[0]["input"] == first.input and ds[0]["target"] == first.target
    assert json.loads(ds[0]["meta"])["tokenizer"] == "gpt2"


def test_fingerprint_is_pinned():
    # Changing what a config means must bump a version; this pin catches accidental changes.
    cfg = GenerateConfig()
    # suite format 2 (background provenance per sample) moved it from f1e6f26878dafaf8
    assert suite_fingerprint(cfg, "background-x")[:16] == "d367db924d5ef9a3"
    assert suite_fingerprint(cfg.model_copy(update={"placement": "spread"}), "background-x") != \
        suite_fingerprint(cfg, "background-x")


def test_facts_that_do_not_fit_are_dropped_and_counted(tmp_path):
    cfg = GenerateConfig(tasks="qa3", lengths="0.4k", samples=6)  # 100 tokens for the facts
    suite = generate_suite(cfg, tmp_path / "s", progress=False)
    cell = suite.info["cells"]["qa3/0.4k"]
    assert cell["dropped"] > 0 and cell["samples"] + cell["dropped"] == 6


@pytest.mark.parametrize("args, message", [
    (["--lengths", "12q"], "bad length '12q'"),
    (["--tasks", "qa33"], "unknown task qa33"),
    (["--tokenizer", "nope"], "unknown tokenizer"),
    (["--samples", "-2"], "must be between 1 and"),
    (["--placement", "middle"], "unknown placement"),
])
def test_bad_input_one_line_nothing_on_disk(tmp_path, capsys, args, message):
    out = tmp_path / "suite"
    assert main(["generate", "--out", str(out), "--samples", "1", "--lengths", "0k", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_not_a_suite(tmp_path):
    with pytest.raises(BabilabError, match="not a babilab suite"):
        Suite(tmp_path)


def test_official_layout_from_a_local_copy(tmp_path, capsys):
    # The hub's layout: data/qaN/<length>.json with input / question / target.
    rows = [{"input": "John travelled to the hallway. Mary journeyed to the bathroom.",
             "question": "Where is Mary? ", "target": "bathroom"},
            {"input": "Daniel went back to the garden.", "question": "Where is Daniel? ",
             "target": "garden"}]
    folder = tmp_path / "babilong" / "data" / "qa1"
    folder.mkdir(parents=True)
    (folder / "0k.json").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "official"
    assert main(["generate", "--official", "--official-source", str(tmp_path / "babilong"),
                 "--tasks", "qa1", "--lengths", "0k", "--out", str(out)]) == 0
    samples = list(Suite(out).samples("qa1", "0k"))
    assert [(s.question, s.target) for s in samples] == [("Where is Mary?", "bathroom"),
                                                          ("Where is Daniel?", "garden")]
    assert samples[0].fact_depths == () and samples[0].support_depth is None
    assert main(["generate", "--official", "--official-source", str(tmp_path / "nothing"),
                 "--lengths", "4k", "--out", str(tmp_path / "o2")]) == 2
    assert "cannot load" in capsys.readouterr().err


# --- background provenance and the repetition factor ---------------------------------------------

def test_every_sample_says_where_its_background_came_from(suite):
    for sample in suite:
        bg = sample.meta["background"]
        if sample.length == "0k":
            assert bg == {"spans": [], "tokens": 0, "distinct_tokens": 0, "repetition": 1.0}
            continue
        assert bg["repetition"] == 1.0 and bg["tokens"] == bg["distinct_tokens"] > 0
        assert [s["book"] for s in bg["spans"]] == sample.meta["books"]
        assert sum(s["tokens"] for s in bg["spans"]) == bg["tokens"]
        assert sample.context_tokens - 200 < bg["tokens"] < sample.context_tokens  # less facts
    for key, cell in suite.info["cells"].items():
        assert (cell["repetition_max"], cell["repeating"]) == (1.0, 0), key


def test_generate_reports_repetition_and_warns_when_text_repeats(tmp_path, capsys):
    books = tmp_path / "books"
    books.mkdir()
    (books / "only.txt").write_text("The mill stood by the river for a hundred years. " * 150,
                                    encoding="utf-8")  # about 1,650 tokens of background
    args = ["generate", "--tasks", "qa1", "--samples", "2", "--corpus", f"dir:{books}"]
    assert main([*args, "--lengths", "0k,1k", "--out", str(tmp_path / "a")]) == 0
    out, err = capsys.readouterr()
    assert "0k: facts only, no background" in out
    assert "1k: repetition factor 1.00 (max 1.00), 0 of 2 contexts repeat" in out
    assert "warning" not in err
    assert main([*args, "--lengths", "4k", "--out", str(tmp_path / "b")]) == 0
    out, err = capsys.readouterr()
    assert "4k: repetition factor 2." in out and "2 of 2 contexts repeat" in out
    assert err.startswith("warning: 4k contexts repeat background text (up to 2.")
    assert "--corpus gutenberg+austen+sotu+bible+shakespeare" in err and "pg19" in err
    sample = next(Suite(tmp_path / "b").samples("qa1", "4k"))
    assert sample.meta["background"]["distinct_tokens"] < sample.meta["background"]["tokens"]


def test_suites_of_format_1_still_load(tmp_path):
    """A suite written before background provenance (format 1) reads, reports nothing new."""
    from babilab.suite.build import background_report

    folder = tmp_path / "old"
    (folder / "data" / "qa1").mkdir(parents=True)
    (folder / "suite.json").write_text(json.dumps({
        "format": "babilab-suite/1", "fingerprint": "f" * 64,
        "cells": {"qa1/1k": {"samples": 1, "dropped": 0}}}))
    row = {"task": "qa1", "length": "1k", "index": 0, "input": "Mary went home.",
           "question": "Where is Mary?", "target": "home", "facts": ["Mary went home."],
           "supporting": [0], "meta": {"books": ["austen-emma"], "seed": 0}}
    (folder / "data" / "qa1" / "1k.jsonl").write_text(json.dumps(row) + "\n")
    suite = Suite(folder)
    assert [s.target for s in suite] == ["home"]
    assert background_report(suite.info) == ([], [])


@pytest.mark.slow
def test_a_million_token_suite_from_the_offline_corpora_repeats_nothing(tmp_path, capsys):
    from .haystack.conftest import packaged_or_skip

    for name in ("austen", "sotu", "bible", "shakespeare"):
        packaged_or_skip(name)
    corpus = "gutenberg+austen+sotu+bible+shakespeare"
    assert main(["generate", "--tasks", "qa1", "--samples", "2", "--lengths", "1M",
                 "--corpus", corpus, "--out", str(tmp_path / "s")]) == 0
    out, err = capsys.readouterr()
    assert "1M: repetition factor 1.00 (max 1.00), 0 of 2 contexts repeat" in out
    assert "warning" not in err
    suite = Suite(tmp_path / "s")
    assert suite.info["cells"]["qa1/1M"]["repetition_max"] == 1.0
    for sample in suite:
        assert sample.meta["background"]["repetition"] == 1.0
        assert len(sample.meta["background"]["spans"]) > 20
