"""From stored predictions to scores, without touching any model.

`score_run` re-scores every stored output under a scoring mode (so `babilab rescore RUN
--mode strict` costs seconds) and writes `scores_<mode>.csv` (one row per prediction) and
`summary_<mode>.json` (per model: cells with accuracy, n and a 95% interval per prompt
configuration, the leaderboard's best configuration per task, the qa1-qa5 average per
length, exact and as the leaderboard prints it, and as a cell with n and a 95% interval
(`average_cell`), the effective context length per task and of the qa1-qa5 average, for
retrieval answerers recall@k per cell, and where recorded, accuracy by where the supporting
facts lie: depth.py). `export_babilong` writes BABILong's prediction
layout for leaderboard submissions.

A model is its label *and* its fingerprint (the answerer and its decoding settings): the
same label run with two settings is two models, never pooled into one cell. A label with
one fingerprint in the run keeps its plain name; one with several is named
`label@<fingerprint prefix>` for each (`model_names`).
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import BabilabError
from ..outputs import check_output_dir, created_folder, staged_dir, write_atomic, write_text_atomic
from ..scoring import (
    DEFAULT_EFFECTIVE_RULE,
    LEADERBOARD_TASKS,
    MODES,
    Cell,
    EffectiveRule,
    aggregate,
    best_config_per_task,
    effective_length,
    leaderboard_average,
    leaderboard_row,
    score_answer,
)
from ..suite.files import sort_lengths, sort_tasks
from .depth import depth_summary
from .store import Prediction, RunStore


@dataclass(frozen=True)
class Scored:
    prediction: Prediction
    correct: bool


def score_predictions(predictions: list[Prediction], mode: str) -> list[Scored]:
    """A prediction that failed or did not fit the window counts as wrong."""
    return [
        Scored(p, not p.over_window and p.error is None
               and score_answer(p.task, p.target, p.output, p.question, mode))
        for p in predictions
    ]


def retrieval_cells(rows: list[Scored], best: dict[str, str]) -> dict[str, dict]:
    """Per task/length: mean recall@k (all supporting facts; fraction found), in percent.

    Only predictions whose `extra` has `recall_all` (the rag answerer's) count, and only
    under the task's best prompt configuration, so each sample counts once.
    """
    groups: dict[str, list[dict]] = defaultdict(list)
    for s in rows:
        p = s.prediction
        if p.extra and "recall_all" in p.extra and best.get(p.task) == p.prompt_config:
            groups[f"{p.task}/{p.length}"].append(p.extra)
    return {key: {"recall_all": 100 * sum(x["recall_all"] for x in xs) / len(xs),
                  "recall_fraction": 100 * sum(x["recall_fraction"] for x in xs) / len(xs),
                  "facts_split": sum(bool(x.get("facts_split")) for x in xs),
                  "k": xs[0].get("k"), "n": len(xs)}
            for key, xs in sorted(groups.items())}


def model_names(identities: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(label, fingerprint) -> the name a summary, report or export shows for it."""
    by_label: dict[str, list[str]] = defaultdict(list)
    for label, fingerprint in sorted(identities):
        by_label[label].append(fingerprint)
    names = {}
    for label, fingerprints in by_label.items():
        short = {f[:8] for f in fingerprints}
        for f in fingerprints:
            if len(fingerprints) == 1:
                names[(label, f)] = label
            else:  # prefixes that collide would pool again under one name: use the whole one
                names[(label, f)] = f"{label}@{f[:8] if len(short) == len(fingerprints) else f}"
    return names


def by_model(scored: list[Scored]) -> dict[str, list[Scored]]:
    """Scored predictions per model name, models in the order they were first stored."""
    names = model_names({(s.prediction.model, s.prediction.model_fingerprint) for s in scored})
    groups: dict[str, list[Scored]] = defaultdict(list)
    for s in scored:
        groups[names[(s.prediction.model, s.prediction.model_fingerprint)]].append(s)
    return dict(groups)


def cell_flags(rows: list[Scored]) -> dict[str, dict[str, int]]:
    flags = defaultdict(lambda: {"over_window": 0, "failed": 0, "truncated": 0})
    for s in rows:
        f = flags[f"{s.prediction.task}/{s.prediction.length}"]
        f["over_window"] += s.prediction.over_window
        f["failed"] += s.prediction.error is not None
        f["truncated"] += s.prediction.truncated
    return dict(flags)


def effective_lengths(table: dict, tasks: list[str], lengths: list[str],
                      rule: EffectiveRule) -> dict[str, dict]:
    """Per task, the effective context length of its leaderboard cells."""
    return {t: asdict(effective_length({n: c.accuracy for (task, n), c in table.items() if task == t},
                                       lengths, rule))
            for t in tasks}


AVERAGE_INTERVAL_RULE = (
    "The qa1-qa5 average's 95% interval treats the five task accuracies as independent "
    "estimates: each task's standard error is read off its Wilson interval (half its width "
    "/ 1.96), the average's is the root of their sum of squares / 5, and the interval is the "
    "average ± 1.96 of it, clipped to 0-100. Its n is the samples of the five tasks pooled; "
    "it counts as few samples when any one task does.")


def average_cell(cells: list[Cell]) -> dict:
    """The mean of task cells as one cell: accuracy, n pooled, `n_min` (the fewest samples of
    one task) and a 95% interval by `AVERAGE_INTERVAL_RULE`.

    Why not a Wilson interval of the pooled samples: the average weighs each task equally
    whatever its n, and a task at 0% or 100% still has a Wilson interval of non-zero width,
    so one certain-looking task does not make the average look certain. Five tasks at 30/30:
    each Wilson interval is 88.6-100, the average's 97.5-100, as for 150/150 pooled.

    >>> c = average_cell([Cell(50.0, 4, 15.0, 85.0), Cell(100.0, 6, 61.0, 100.0)])
    >>> c["accuracy"], c["n"], c["n_min"], round(c["ci_low"], 1), round(c["ci_high"], 1)
    (75.0, 10, 4, 55.0, 95.0)
    """
    mean = sum(c.accuracy for c in cells) / len(cells)
    se = math.sqrt(sum(((c.ci_high - c.ci_low) / 2 / 1.96) ** 2 for c in cells)) / len(cells)
    return {"accuracy": mean, "n": sum(c.n for c in cells), "n_min": min(c.n for c in cells),
            "ci_low": max(0.0, mean - 1.96 * se), "ci_high": min(100.0, mean + 1.96 * se)}


def average_cells(table: dict[tuple[str, str], Cell], lengths: list[str],
                  tasks: tuple[str, ...] = LEADERBOARD_TASKS) -> dict[str, dict]:
    """Per length that has every one of `tasks`, their mean as a cell (`average_cell`)."""
    return {n: average_cell([table[(t, n)] for t in tasks]) for n in lengths
            if all((t, n) in table for t in tasks)}


def summarize_model(rows: list[Scored], rule: EffectiveRule) -> dict:
    first = rows[0].prediction
    cells = aggregate((s.prediction.prompt_config, s.prediction.task, s.prediction.length,
                       s.correct) for s in rows)
    lengths = sort_lengths(s.prediction.length for s in rows)
    best = best_config_per_task(cells, lengths)
    table = {(t, n): cells[cfg][(t, n)] for t, cfg in best.items() for n in lengths
             if (t, n) in cells[cfg]}
    tasks = sort_tasks(t for t, _ in table)
    summary = {
        "label": first.model,
        "fingerprint": first.model_fingerprint,
        "tasks": tasks,
        "lengths": lengths,
        "best_config": best,
        "cells": {f"{t}/{n}": asdict(c) for (t, n), c in sorted(table.items())},
        "by_config": {cfg: {f"{t}/{n}": asdict(c) for (t, n), c in sorted(cs.items())}
                      for cfg, cs in cells.items()},
        "qa1_qa5_average": leaderboard_average(table, lengths),
        "leaderboard": leaderboard_row(table, lengths),
        "effective_length": effective_lengths(table, tasks, lengths, rule),
        "flags": cell_flags(rows),
    }
    averages = average_cells(table, lengths)
    summary["qa1_qa5_cells"] = averages  # only lengths with all five tasks
    summary["qa1_qa5_effective_length"] = asdict(effective_length(
        {n: c["accuracy"] for n, c in averages.items()}, lengths, rule))
    retrieval = retrieval_cells(rows, best)
    if retrieval:  # retrieval answerers only: recall@k next to accuracy
        summary["retrieval"] = retrieval
    depth = depth_summary(rows, best, lengths)
    if depth:  # predictions that know where their supporting facts lie
        summary["depth"] = depth
    return summary


def summarize(scored: list[Scored], mode: str, rule: EffectiveRule = DEFAULT_EFFECTIVE_RULE) -> dict:
    return {"mode": mode,
            "effective_rule": {"rule": str(rule), "text": rule.describe()},
            "models": {name: summarize_model(rows, rule) for name, rows in by_model(scored).items()}}


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise BabilabError(f"unknown scoring mode {mode!r}; use --mode {' or '.join(MODES)}")
    return mode


def score_run(run_dir: Path | str, mode: str = "babilong",
              rule: EffectiveRule = DEFAULT_EFFECTIVE_RULE, out: Path | str | None = None) -> dict:
    """Score all predictions of a run; writes scores_<mode>.csv and summary_<mode>.json into
    `out` (by default the run folder), each atomically. The run itself is only read, so with
    `out` elsewhere it may be read-only (a shared results folder, a mounted archive)."""
    check_mode(mode)
    run_dir = Path(run_dir)
    out = run_dir if out is None else Path(out)
    check_output_dir(out, "--out")
    with RunStore(run_dir, create=False) as store:
        predictions = list(store.predictions())
    scored = score_predictions(predictions, mode)
    summary = summarize(scored, mode, rule)
    with created_folder(out):
        write_atomic(out / f"scores_{mode}.csv", lambda tmp: write_scores(tmp, scored))
        write_text_atomic(out / f"summary_{mode}.json", json.dumps(summary, indent=2) + "\n")
    return summary


def write_scores(path: str, scored: list[Scored]) -> None:
    """scores_<mode>.csv: one row per prediction, whether it is correct."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["model", "model_fingerprint", "prompt_config", "task", "length",
                         "sample_id", "target", "output", "correct", "depth", "over_window",
                         "error"])
        for s in scored:
            p = s.prediction
            writer.writerow([p.model, p.model_fingerprint, p.prompt_config, p.task, p.length,
                             p.sample_id, p.target, p.output, int(s.correct), p.depth,
                             int(p.over_window), p.error or ""])


def export_babilong(run_dir: Path | str, out: Path | str) -> list[Path]:
    """Write `<out>/<model>/<task>_<length>_<config>.csv` with `,target,output,question`;
    `<model>` is the model's name (`model_names`), so two settings of a label never share a file.
    The run is only read; the files are built aside and moved into `out` once all are written.
    Names from the store become path parts that cannot leave `out` (`safe_part`)."""
    run_dir, out = Path(run_dir), Path(out)
    check_output_dir(out, "--out")
    with RunStore(run_dir, create=False) as store:
        predictions = list(store.predictions())
    names = model_names({(p.model, p.model_fingerprint) for p in predictions})
    groups: dict[tuple[str, str, str, str], list[Prediction]] = defaultdict(list)
    for p in predictions:
        groups[(names[(p.model, p.model_fingerprint)], p.task, p.length, p.prompt_config)].append(p)
    files: dict[Path, list[Prediction]] = {}
    for (model, task, length, config), rows in sorted(groups.items()):
        relative = export_path(model, task, length, config)
        if relative in files:
            raise BabilabError(f"{run_dir}: two models export to {relative} ({model!r} and "
                               "another whose name differs only in characters a path cannot "
                               "hold); export into separate folders per model")
        files[relative] = sorted(rows, key=lambda p: sample_number(p, run_dir))
    with staged_dir(out) as tmp:
        for relative, rows in files.items():
            (tmp / relative).parent.mkdir(parents=True, exist_ok=True)
            with open(tmp / relative, "w", newline="", encoding="utf-8") as f:
                writer = csv.writer(f)
                writer.writerow(["", "target", "output", "question"])
                for i, p in enumerate(rows):
                    writer.writerow([i, p.target, p.output, p.question])
    return [out / relative for relative in files]


def safe_part(name: str) -> str:
    """A name from the store as one path part: no separators, never empty, `.` or `..`.

    >>> safe_part(".."), safe_part("a/b"), safe_part("openai:gpt-4o")
    ('__', 'a_b', 'openai:gpt-4o')
    """
    cleaned = "".join("_" if c in "/\\\0" else c for c in name)
    return cleaned if cleaned.strip(".") else "_" * max(len(cleaned), 1)


def export_path(model: str, task: str, length: str, config: str) -> Path:
    """`<model>/<task>_<length>_<config>.csv`, the model's `org/name` kept as two folders."""
    folders = [safe_part(part) for part in model.split("/")]
    return Path(*folders, f"{safe_part(task)}_{safe_part(length)}_{safe_part(config)}.csv")


def sample_number(p: Prediction, run_dir: Path) -> int:
    """The n of `task/length/n`: the row order of BABILong's files."""
    tail = p.sample_id.rsplit("/", 1)[-1]
    if not tail.isdigit():
        raise BabilabError(f"{run_dir}: prediction {p.sample_id!r} of {p.model} has no sample "
                           "number (expected task/length/N), so its row in the export is "
                           "unknown; export a run made by `babilab eval` or `babilab import`")
    return int(tail)
