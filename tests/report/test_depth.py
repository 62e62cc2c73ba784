"""Where the facts are lost: accuracy by supporting-fact depth, the depth x length grid of
`generate --depths` suites, and the first-25%-vs-rest line, with numbers known in advance."""

import itertools
import sqlite3
from pathlib import Path

import pytest

from babilab.babi import solve
from babilab.cli import main
from babilab.models.base import Answer, Answerer, fingerprint_of, register
from babilab.runs import RunStore, score_run
from babilab.runs.depth import depth_summary, early_vs_rest_line, layout
from babilab.runs.results import Scored
from babilab.runs.store import _COLUMNS, STORE_FILE, Prediction
from babilab.suite import Suite
from tests.haystack.conftest import make_book


@register("early_facts")
class EarlyFacts(Answerer):
    """Right only when every supporting fact starts in the first quarter of the context: a
    model that loses whatever comes later."""

    @classmethod
    def from_spec(cls, arg: str = "", **options) -> "EarlyFacts":
        return cls()

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(backend="early_facts")

    def answer(self, requests, config):
        return [Answer(solve(r.task, list(r.facts), r.question) if early(r) else "nowhere")
                for r in requests]


IDS = itertools.count()


def early(request) -> bool:
    return all(100 * request.fact_char_offsets[i] / len(request.context) < 25
               for i in request.supporting)


def scored(depths, correct, length="4k", placement=None, config="c", task="qa2"):
    return Scored(Prediction(suite="s", sample_id=f"{task}/{length}/{next(IDS)}", task=task,
                             length=length, prompt_config=config, model="m", model_fingerprint="f",
                             target="t", question="q", output="o", support_depths=depths,
                             placement=placement), correct)


def test_layouts():
    assert layout((3.0, 24.9)) == "all in the first 25%"
    assert layout((10.0, 60.0)) == "spread across the context"
    assert layout((30.0, 40.0)) == layout((24.0, 73.9)) == layout((25.0,)) == "neither"


def test_depth_tables_count_each_sample_once_under_the_best_configuration():
    rows = [scored((5.0, 10.0), True), scored((5.0, 20.0), True),   # all early: 2 of 2
            scored((5.0, 80.0), False), scored((10.0, 90.0), True),  # spread: 1 of 2
            scored((40.0, 45.0), False), scored((60.0, 70.0), False),  # neither: 0 of 2
            scored((70.0, 99.0), True, length="8k"),  # neither, at 8k
            scored((1.0, 2.0), False, config="worse"),  # another configuration: not counted
            scored(None, True)]  # no per-fact depths (e.g. imported): left out, counted
    depth = depth_summary(rows, {"qa2": "c"}, ["4k", "8k"])
    assert depth["without_depths"] == 1
    first, last, shape = depth["by_first"], depth["by_last"], depth["layout"]
    assert {q: (c["all"]["n"], c["all"]["accuracy"]) for q, c in first.items()} == {
        "0-25%": (4, 75.0), "25-50%": (1, 0.0), "50-75%": (2, 50.0)}
    assert {q: (c["all"]["n"], c["all"]["accuracy"]) for q, c in last.items()} == {
        "0-25%": (2, 100.0), "25-50%": (1, 0.0), "50-75%": (1, 0.0),
        "75-100%": (3, pytest.approx(200 / 3))}
    assert (last["75-100%"]["4k"]["n"], last["75-100%"]["8k"]["n"]) == (2, 1)
    assert {k: (c["all"]["n"], c["all"]["accuracy"]) for k, c in shape.items()} == {
        "all in the first 25%": (2, 100.0), "spread across the context": (2, 50.0),
        "neither": (3, pytest.approx(100 / 3))}
    assert depth["early_vs_rest"]["early"]["n"] == 2 and depth["early_vs_rest"]["rest"]["n"] == 5
    assert early_vs_rest_line(depth) == ("correct answers when the supporting facts lie in the "
                                         "first 25% of the context: 100.0% (n=2) vs the rest: "
                                         "40.0% (n=5)")
    assert depth["niah"] is None


def test_the_niah_grid_comes_from_depth_placements():
    rows = [scored((1.0,), True, "1k", "depth:0"), scored((2.0,), True, "2k", "depth:0"),
            scored((50.0,), False, "1k", "depth:50"), scored((51.0,), True, "1k", "depth:50"),
            scored((80.0,), False, "2k", "uniform")]
    niah = depth_summary(rows, {"qa2": "c"}, ["1k", "2k"])["niah"]
    assert niah["depths"] == ["0", "50"]
    assert {d: {n: (c["accuracy"], c["n"]) for n, c in cells.items()}
            for d, cells in niah["cells"].items()} == {
        "0": {"1k": (100.0, 1), "2k": (100.0, 1), "all": (100.0, 2)},
        "50": {"1k": (50.0, 2), "all": (50.0, 2)}}


@pytest.fixture(scope="module")
def books(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("books")
    for k, n in enumerate([220, 160, 260, 120]):
        (root / f"book{k}.txt").write_text(make_book(k, n))
    return root


def generate(out: Path, books: Path, *extra: str) -> int:
    return main(["generate", "--tasks", "qa1", "--lengths", "1k,2k", "--samples", "4",
                 "--corpus", f"dir:{books}", "--tokenizer", "cl100k", "--out", str(out), *extra])


def test_generate_depths_builds_one_suite_per_depth_and_the_report_gives_the_grid(
        books, tmp_path, capsys):
    assert generate(tmp_path / "niah", books, "--depths", "0,50,100") == 0
    out = capsys.readouterr().out
    assert "babilab report RUN gives accuracy by depth x length" in out
    suites = {d: Suite(tmp_path / "niah" / f"depth-{d}") for d in ("0", "50", "100")}
    # each is the suite --placement depth:D builds: same fingerprint, a cache hit
    assert generate(tmp_path / "single", books, "--placement", "depth:50") == 0
    assert Suite(tmp_path / "single").fingerprint == suites["50"].fingerprint
    assert len({s.fingerprint for s in suites.values()}) == 3

    run = tmp_path / "run"
    for suite in suites.values():
        assert main(["eval", "--suite", str(suite.path), "--model", "early_facts",
                     "--run", str(run)]) == 0
    with RunStore(run, create=False) as store:
        stored = list(store.predictions())
    assert len(stored) == 24 and {p.placement for p in stored} == {"depth:0", "depth:50",
                                                                   "depth:100"}
    assert all(p.support_depths and len(p.support_depths) == 1 for p in stored)

    depth = score_run(run)["models"]["early_facts"]["depth"]
    cells = depth["niah"]["cells"]
    assert depth["niah"]["depths"] == ["0", "50", "100"]
    assert {d: {n: (c["accuracy"], c["n"]) for n, c in row.items()} for d, row in cells.items()} == {
        "0": {"1k": (100.0, 4), "2k": (100.0, 4), "all": (100.0, 8)},
        "50": {"1k": (0.0, 4), "2k": (0.0, 4), "all": (0.0, 8)},
        "100": {"1k": (0.0, 4), "2k": (0.0, 4), "all": (0.0, 8)}}
    line = ("correct answers when the supporting facts lie in the first 25% of the context: "
            "100.0% (n=8) vs the rest: 0.0% (n=16)")
    assert early_vs_rest_line(depth) == line

    capsys.readouterr()
    assert main(["report", str(run)]) == 0
    assert line in capsys.readouterr().out
    report = run / "report"
    page = (report / "index.html").read_text()
    assert line in page and "Needle in a haystack" in page
    assert "<tr><th>50%</th>" in page and "0.0<small> (n=4)</small>" in page
    assert "<th>first supporting fact at 0-25%</th>" in page
    assert (report / "early_facts_babilong_niah.png").read_bytes().startswith(b"\x89PNG")
    niah_csv = (report / "early_facts_babilong_niah.csv").read_text().splitlines()
    assert niah_csv[0] == "placement depth,length,accuracy,n" and "0%,1k,100.0,4" in niah_csv


@pytest.mark.parametrize("extra, message", [
    (["--depths", "0,50,150"], "within 0..100"),
    (["--depths", "0,a"], "expected percentages"),
    (["--depths", "25,25"], "given twice"),
    (["--depths", "0,50", "--placement", "uniform"], "drop placement 'uniform'"),
])
def test_bad_depths_are_one_line_and_exit_2(books, tmp_path, capsys, extra, message):
    assert generate(tmp_path / "niah", books, *extra) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and message in err and not (tmp_path / "niah").exists()


def test_a_store_from_before_depths_were_recorded_opens_and_gains_the_columns(tmp_path):
    old = [c for c in _COLUMNS if c not in ("support_depths", "placement")]
    with sqlite3.connect(tmp_path / STORE_FILE) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('format', '1')")
        db.execute(f"CREATE TABLE predictions (key TEXT PRIMARY KEY, {', '.join(old)}, "
                   "created_at REAL NOT NULL)")
        values = {c: None for c in old} | dict(
            suite="s", sample_id="qa1/0k/0", task="qa1", length="0k", prompt_config="c",
            model="m", model_fingerprint="f", target="garden", question="q", output="garden",
            elapsed_s=0.0, over_window=0, truncated=0)
        db.execute(f"INSERT INTO predictions VALUES ('k', {', '.join('?' * len(old))}, 0)",
                   [values[c] for c in old])
    with RunStore(tmp_path) as store:
        store.add([Prediction(suite="s", sample_id="qa1/0k/1", task="qa1", length="0k",
                              prompt_config="c", model="m", model_fingerprint="f", target="garden",
                              question="q", output="garden", support_depths=(12.5,),
                              placement="depth:10")])
        first, second = store.predictions()
    assert (first.support_depths, first.placement) == (None, None)
    assert (second.support_depths, second.placement) == ((12.5,), "depth:10")
