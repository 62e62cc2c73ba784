"""Reports of a run: tables, heatmaps and one static HTML page.

    build_report(run_dir)            # -> run_dir/report/index.html (+ PNG, CSV, JSON files)

First the leaderboard (leaderboard.py): all models x lengths, the qa1-qa5 average and each
task, with n and a 95% interval per cell, and every model's effective context lengths. Then
per model: the task x length table of the leaderboard (best prompt configuration per task,
with n and a 95% interval per cell) with each task's effective context length, the qa1-qa5
average per length (exact, and rounded as the leaderboard prints it), accuracy by
supporting-fact depth x length (lost in the middle), accuracy by depth quartile, where the
facts are lost (report/depth.py: by the first and last supporting fact's depth, the share
correct with the facts in the first 25% vs the rest, and the depth x length grid of
`depth:D` suites), the prompts files used (by digest), and the over-window / failed /
truncated counts; for retrieval (rag) models, recall@k of the
supporting facts by task x length. A model is a label and its settings fingerprint: two
settings of one label get two sections (`runs.results.model_names`). Everything comes from
stored predictions; the report never runs a model. Model outputs are HTML-escaped. Every
cell with a sample count gives it, in tables and figures, and one with fewer than
`min_samples` samples is marked (cells.py).
"""

from __future__ import annotations

import csv
import html
import json
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

from ..runs.results import by_model, score_predictions, summarize
from ..runs.store import RunStore
from ..scoring import DEFAULT_EFFECTIVE_RULE, EffectiveRule, cell_of
from .cells import cell_td, effective_td, few_legend, grid_pngs, safe_name
from .depth import depth_section
from .leaderboard import build_leaderboard, leaderboard_section
from .plots import depth_bin, depth_rows, heatmap_png, img_tag, lines_png

MIN_SAMPLES = 20  # fewer samples are marked: a 95% interval at 50% then spans over 40 points

QUARTILES = ("0-25%", "25-50%", "50-75%", "75-100%")


def depth_tables(scored, lengths: list[str], best: dict[str, str]) -> tuple[list[list], list[list]]:
    """(depth-bin x length cells, quartile x length cells) by the mean supporting-fact depth,
    over samples with depths under their task's best configuration (each sample once)."""
    bins: dict[tuple[int, str], list[bool]] = defaultdict(list)
    quarters: dict[tuple[int, str], list[bool]] = defaultdict(list)
    for s in scored:
        depth = s.prediction.depth
        if depth is None or best.get(s.prediction.task) != s.prediction.prompt_config:
            continue
        bins[(depth_bin(depth), s.prediction.length)].append(s.correct)
        quarters[(min(3, int(depth // 25)), s.prediction.length)].append(s.correct)

    def table(groups, n_rows):
        return [[asdict(cell_of(groups[(r, n)])) if groups.get((r, n)) else None for n in lengths]
                for r in range(n_rows)]

    return table(bins, len(depth_rows())), table(quarters, len(QUARTILES))


def build_report(run_dir: Path | str, mode: str = "babilong", out: Path | str | None = None,
                 rule: EffectiveRule = DEFAULT_EFFECTIVE_RULE,
                 min_samples: int = MIN_SAMPLES) -> Path:
    """Write the HTML report and its files; returns the path of index.html. Cells with fewer
    than `min_samples` samples are marked."""
    run_dir = Path(run_dir)
    out = Path(out) if out else run_dir / "report"
    with RunStore(run_dir, create=False) as store:  # read-only: the run may be, too
        predictions = list(store.predictions())
    out.mkdir(parents=True, exist_ok=True)  # only once the run is known to be one
    scored = score_predictions(predictions, mode)
    summary = summarize(scored, mode, rule)
    scored_by_model = by_model(scored)
    (out / f"summary_{mode}.json").write_text(json.dumps(summary, indent=2) + "\n")
    board = leaderboard_section(build_leaderboard(summary, min_samples), out, f"leaderboard_{mode}")

    sections = [board] if board else []
    for model, s in summary["models"].items():
        tasks, lengths = s["tasks"], s["lengths"]
        mine = scored_by_model[model]
        grid = [[s["cells"].get(f"{t}/{n}") for n in lengths] for t in tasks]
        safe = safe_name(model)
        with open(out / f"{safe}_{mode}_task_by_length.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["task", *lengths])
            for t, row in zip(tasks, grid, strict=True):
                w.writerow([t, *("" if c is None else round(c["accuracy"], 1) for c in row)])
        task_png = heatmap_png(**grid_pngs(grid, min_samples), rows=tasks, cols=lengths,
                               title=f"{model}: accuracy (%), {mode} metric",
                               xlabel="context length", ylabel="task")
        (out / f"{safe}_{mode}_task_by_length.png").write_bytes(task_png)
        depth_grid, quartile_grid = depth_tables(mine, lengths, s["best_config"])
        parts = [f"<h2>{html.escape(model)}</h2>", img_tag(task_png, f"{model} task x length")]
        parts.append(averages_paragraph(s))
        parts.append(cells_table(s, tasks, lengths, min_samples))
        if s.get("retrieval"):
            parts.append(recall_table(s["retrieval"], tasks, lengths))
        if any(c is not None for row in depth_grid for c in row):
            depth_png = heatmap_png(**grid_pngs(depth_grid, min_samples), rows=depth_rows(),
                                    cols=lengths,
                                    title=f"{model}: accuracy by mean supporting-fact depth",
                                    xlabel="context length", ylabel="depth of supporting facts")
            quart_png = lines_png({q: [None if c is None else c["accuracy"] for c in row]
                                   for q, row in zip(QUARTILES, quartile_grid, strict=True)},
                                  lengths, f"{model}: accuracy by depth quartile", "context length")
            (out / f"{safe}_{mode}_depth_by_length.png").write_bytes(depth_png)
            (out / f"{safe}_{mode}_depth_quartiles.png").write_bytes(quart_png)
            parts += [img_tag(depth_png, f"{model} depth x length"), img_tag(quart_png, "quartiles")]
        if s.get("depth"):
            parts += depth_section(s["depth"], model, f"{safe}_{mode}", out, min_samples)
        parts.append(flags_table(s["flags"]))
        parts.append(examples_table(mine[:20]))
        sections.append("\n".join(parts))

    page = PAGE.format(title=html.escape(f"babilab report: {run_dir.name}"), mode=mode,
                       n=len(predictions), effective=html.escape(summary["effective_rule"]["text"]),
                       few=few_legend(min_samples),
                       prompt_files=prompt_files_paragraph(run_dir),
                       body="\n<hr>\n".join(sections) or "<p>No predictions.</p>")
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def prompt_files_paragraph(run_dir: Path) -> str:
    """Which prompts file each `@prompts-<digest>` in a configuration name stands for."""
    from ..runs.evaluate import read_run_file

    info = read_run_file(run_dir)  # checked: a damaged run.json is one clear line
    files = {short: source for note in info["models"].values()
             for short, source in note.get("prompt_files", {}).items()}
    if not files:
        return ""
    items = "".join(f"<li><code>prompts-{html.escape(short)}</code>: {html.escape(source)}</li>"
                    for short, source in sorted(files.items()))
    return ("<p>Prompt texts from files (a configuration name ending in @prompts-DIGEST; the "
            f"digest is of the prompts the file gives):</p><ul>{items}</ul>")


def averages_paragraph(s: dict) -> str:
    """The qa1-qa5 mean per length, exact and as the leaderboard prints it."""
    exact = ", ".join(f"{n}: {'n/a' if v < 0 else f'{v:.1f}'}"
                      for n, v in s["qa1_qa5_average"].items())
    printed = " ".join("n/a" if v is None else str(v) for v in s["leaderboard"].values())
    return (f"<p>qa1-qa5 average per length: {html.escape(exact)}. As the BABILong leaderboard "
            f"prints it (each task rounded to a whole percent, then their mean, rounded): "
            f"{html.escape(printed)}.</p>")


def cells_table(s: dict, tasks: list[str], lengths: list[str], min_samples: int) -> str:
    head = "".join(f"<th>{html.escape(n)}</th>" for n in lengths)
    rows = []
    for t in tasks:
        tds = "".join(cell_td(s["cells"].get(f"{t}/{n}"), min_samples) for n in lengths)
        rows.append(f"<tr><th>{t}</th>{tds}{effective_td(s['effective_length'][t])}"
                    f"<td><small>{html.escape(s['best_config'][t])}</small></td></tr>")
    return (f"<table><tr><th>task</th>{head}<th>effective length</th>"
            f"<th>best prompt configuration</th></tr>{''.join(rows)}</table>")


def recall_table(retrieval: dict, tasks: list[str], lengths: list[str]) -> str:
    """recall@k of the supporting facts per task x length: all found %, (mean fraction %)."""
    head = "".join(f"<th>{html.escape(n)}</th>" for n in lengths)
    rows, k = [], None
    for t in tasks:
        tds = []
        for n in lengths:
            c = retrieval.get(f"{t}/{n}")
            k = k or (c or {}).get("k")
            split = f", {c['facts_split']} with split facts" if c and c["facts_split"] else ""
            tds.append("<td></td>" if c is None else
                       f'<td title="mean fraction found {c["recall_fraction"]:.0f}%{split}">'
                       f'{c["recall_all"]:.1f}<small> ({c["recall_fraction"]:.0f})</small></td>')
        rows.append(f"<tr><th>{t}</th>{''.join(tds)}</tr>")
    return (f"<p>Retrieval: recall@{k} of the supporting facts, % of samples with all of them "
            "retrieved (mean fraction retrieved).</p>"
            f"<table><tr><th>task</th>{head}</tr>{''.join(rows)}</table>")


def flags_table(flags: dict) -> str:
    bad = {k: v for k, v in flags.items() if any(v.values())}
    if not bad:
        return "<p>No prompt was over the window, truncated or failed.</p>"
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v['over_window']}</td><td>{v['truncated']}"
                   f"</td><td>{v['failed']}</td></tr>" for k, v in sorted(bad.items()))
    return ("<table><tr><th>cell</th><th>over window</th><th>truncated</th><th>failed</th></tr>"
            f"{rows}</table>")


def examples_table(scored) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(s.prediction.sample_id)}</td><td>{html.escape(s.prediction.question)}"
        f"</td><td>{html.escape(s.prediction.target)}</td><td>{html.escape(s.prediction.output)}"
        f"</td><td>{'yes' if s.correct else 'no'}</td></tr>" for s in scored)
    return ("<details><summary>First predictions</summary><table><tr><th>sample</th>"
            "<th>question</th><th>target</th><th>output</th><th>correct</th></tr>"
            f"{rows}</table></details>")


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 1100px; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }}
td, th {{ border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }}
img {{ display: block; margin: 1em 0; max-width: 100%; }}
td.few {{ font-style: italic; color: #666; }}
</style></head>
<body><h1>{title}</h1>
<p>{n} predictions; scored with the <b>{mode}</b> metric. Each cell uses the prompt
configuration that is best for its task over all lengths, as the BABILong leaderboard does.
A model is its label and its settings fingerprint: one label run with two settings is shown
as two models, <i>label@fingerprint</i>, never pooled. Each cell gives its n (samples);
hover over it for its 95% interval. {few}</p>
<p>{effective}</p>
{prompt_files}
{body}
</body></html>
"""
