"""The report's first section: every model of a run beside the others, models x lengths.

From a run's summary (runs/results.py), with nothing recomputed: the qa1-qa5 average per
length (printed as the BABILong leaderboard prints it, coloured by the exact mean), each
task per length, and the effective context length per model and task. Every cell has its
n and 95% interval, and cells with fewer than `min_samples` samples are marked (cells.py).
A model is its label and settings fingerprint (`runs.results.model_names`), so one label
run with two settings is two rows, never one pooled row.

Written next to index.html: leaderboard_<mode>.json (the whole section), .csv (one row per
model, row and length) and one PNG per heatmap (a task with a single cell has none). Models
keep the summary's order (first stored first); lengths and tasks are the union over models,
a model's missing ones blank.
"""

from __future__ import annotations

import csv
import html
import json
from pathlib import Path

from ..runs.results import AVERAGE_INTERVAL_RULE
from ..suite.files import sort_lengths, sort_tasks
from .cells import cell_td, effective_td, grid_pngs, is_few, safe_name
from .plots import heatmap_png, img_tag

AVERAGE = "qa1-qa5"  # the name of the average's row in the CSV and its heatmap


def build_leaderboard(summary: dict, min_samples: int) -> dict:
    """The section's numbers: per model its qa1-qa5 average cells (with the leaderboard's
    printed number), its task cells and effective lengths; `few` marks cells under
    `min_samples`."""
    models = summary["models"]

    def marked(cell: dict) -> dict:
        return {**cell, "few": is_few(cell, min_samples)}

    return {
        "mode": summary["mode"],
        "min_samples": min_samples,
        "interval_rule": AVERAGE_INTERVAL_RULE,
        "effective_rule": summary["effective_rule"],
        "lengths": sort_lengths(n for s in models.values() for n in s["lengths"]),
        "tasks": sort_tasks(t for s in models.values() for t in s["tasks"]),
        "models": {name: {
            "label": s["label"],
            "fingerprint": s["fingerprint"],
            "average": {n: marked(c) | {"leaderboard": s["leaderboard"][n]}
                        for n, c in s["qa1_qa5_cells"].items()},
            "average_effective_length": s["qa1_qa5_effective_length"],
            "tasks": {t: {n: marked(s["cells"][f"{t}/{n}"]) for n in s["lengths"]
                          if f"{t}/{n}" in s["cells"]} for t in s["tasks"]},
            "effective_length": s["effective_length"],
        } for name, s in models.items()},
    }


def write_leaderboard(board: dict, out: Path, stem: str) -> None:
    """STEM.json (the whole board) and STEM.csv (one row per model, row and length)."""
    (out / f"{stem}.json").write_text(json.dumps(board, indent=2) + "\n", encoding="utf-8")
    with open(out / f"{stem}.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["model", "label", "fingerprint", "task", "length", "accuracy", "leaderboard",
                    "n", "n_min", "ci_low", "ci_high", "few_samples"])
        for name, m in board["models"].items():
            rows = [(AVERAGE, m["average"]), *m["tasks"].items()]
            for task, cells in rows:
                for n, c in cells.items():
                    w.writerow([name, m["label"], m["fingerprint"], task, n, round(c["accuracy"], 2),
                                c.get("leaderboard", ""), c["n"], c.get("n_min", c["n"]),
                                round(c["ci_low"], 2), round(c["ci_high"], 2), int(c["few"])])


def leaderboard_section(board: dict, out: Path, stem: str) -> str:
    """The HTML section; writes STEM.json, STEM.csv, STEM_average.png and STEM_<task>.png."""
    write_leaderboard(board, out, stem)
    models, lengths, min_samples = board["models"], board["lengths"], board["min_samples"]
    names = list(models)
    if not names:
        return ""
    parts = ["<h2>Leaderboard</h2>",
             f"<p>Every model of the run, models x context lengths, {board['mode']} metric, "
             "best prompt configuration per task. Each cell gives the accuracy (%) and n, the "
             "number of samples; hover over a cell for its 95% interval (Wilson's for a "
             "task).</p>"]

    average = [[models[m]["average"].get(n) for n in lengths] for m in names]
    png = heatmap_png(**grid_pngs(average, min_samples,
                                  [[c and str(c["leaderboard"]) for c in row] for row in average]),
                      rows=names, cols=lengths, title=f"qa1-qa5 average (%), {board['mode']} metric",
                      xlabel="context length", ylabel="model")
    (out / f"{stem}_average.png").write_bytes(png)
    parts += ["<h3>qa1-qa5 average</h3>",
              "<p>As the BABILong leaderboard prints it: each task's accuracy rounded to a "
              "whole percent, then their mean rounded (the exact mean is in the tooltip, and "
              f"colours the figure). {html.escape(board['interval_rule'])}</p>",
              average_table(models, lengths, min_samples),
              img_tag(png, "qa1-qa5 average, models x lengths")]

    parts += ["<h3>Effective context length</h3>",
              f"<p>By the rule stated above ({html.escape(board['effective_rule']['rule'])}); "
              "the qa1-qa5 row applies it to the exact average. Hover over a length for the "
              "accuracy it needs.</p>", effective_table(board)]

    parts.append("<h3>Per task</h3><p>Models x lengths for one task (click a task to open "
                 "it), with a figure where the task has more than one cell.</p>")
    for task in board["tasks"]:
        grid = [[models[m]["tasks"].get(task, {}).get(n) for n in lengths] for m in names]
        figure = ""
        if sum(c is not None for row in grid for c in row) > 1:  # one cell: the table says it all
            png = heatmap_png(**grid_pngs(grid, min_samples), rows=names, cols=lengths,
                              title=f"{task} accuracy (%), {board['mode']} metric",
                              xlabel="context length", ylabel="model")
            (out / f"{stem}_{safe_name(task)}.png").write_bytes(png)
            figure = img_tag(png, f"{task}, models x lengths")
        parts.append(f"<details><summary>{html.escape(task)}</summary>"
                     f"{task_table(models, task, lengths, min_samples)}{figure}</details>")
    return "\n".join(parts)


def model_th(name: str, model: dict) -> str:
    """A model's name with the start of its settings fingerprint; all of it on hover."""
    return (f'<th title="{html.escape(model["label"])}, settings fingerprint '
            f'{html.escape(model["fingerprint"])}">{html.escape(name)}<br>'
            f'<small>{html.escape(model["fingerprint"][:8])}</small></th>')


def average_table(models: dict, lengths: list[str], min_samples: int) -> str:
    head = "".join(f"<th>{html.escape(n)}</th>" for n in lengths)
    rows = []
    for name, m in models.items():
        tds = "".join(cell_td(c, min_samples, str(c["leaderboard"]),
                              note=f"exact mean {c['accuracy']:.2f}%; ")
                      if (c := m["average"].get(n)) else "<td></td>" for n in lengths)
        rows.append(f"<tr>{model_th(name, m)}{tds}{effective_td(m['average_effective_length'])}"
                    "</tr>")
    return (f"<table><tr><th>model</th>{head}<th>effective length</th></tr>{''.join(rows)}"
            "</table>")


def task_table(models: dict, task: str, lengths: list[str], min_samples: int) -> str:
    head = "".join(f"<th>{html.escape(n)}</th>" for n in lengths)
    rows = "".join(
        f"<tr>{model_th(name, m)}"
        f"{''.join(cell_td(m['tasks'].get(task, {}).get(n), min_samples) for n in lengths)}"
        f"{effective_td(m['effective_length'].get(task))}</tr>"
        for name, m in models.items())
    return (f"<table><tr><th>model</th>{head}<th>effective length</th></tr>{rows}</table>")


def effective_table(board: dict) -> str:
    """Tasks (and the qa1-qa5 average) x models: each model's effective context length."""
    models = board["models"]
    head = "".join(model_th(name, m) for name, m in models.items())
    rows = [f"<tr><th>{AVERAGE}</th>"
            + "".join(effective_td(m["average_effective_length"]) for m in models.values())
            + "</tr>"]
    for task in board["tasks"]:
        rows.append(f"<tr><th>{html.escape(task)}</th>"
                    + "".join(effective_td(m["effective_length"].get(task))
                              for m in models.values()) + "</tr>")
    return f"<table><tr><th>task</th>{head}</tr>{''.join(rows)}</table>"
