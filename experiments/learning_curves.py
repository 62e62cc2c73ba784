"""Validation accuracy against training samples seen, for one or more `babilab train` runs.

    python experiments/learning_curves.py out/cpu_smollm2_armt out/cpu_smollm2_rmt out/cpu_smollm2_plain

Reads each run's metrics.jsonl (a run folder, or the file itself), copies it to
experiments/results/train/NAME.metrics.jsonl so the curve stays with the repository, and draws
experiments/results/learning_curves.png: one line per run, the stage boundaries marked, the
qa1 heuristics (models/heuristic.py, on the same bAbI valid split) drawn in for reference.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def heuristics(n: int = 2000) -> dict[str, float]:
    """The qa1 heuristics' accuracy (%) on n questions of the bAbI valid split."""
    from babilab.babi.generate import take_qas
    from babilab.models.heuristic import actor_places, last_place

    qas = take_qas("qa1", "valid", n)
    return {
        "last place mentioned": 100 * sum(last_place(list(q.facts), q.question) == q.answer
                                          for q in qas) / n,
        "a place the actor visited": 100 * sum(actor_places(list(q.facts), q.question, str(i))
                                               == q.answer for i, q in enumerate(qas)) / n,
    }


def read_metrics(path: Path) -> list[dict]:
    file = path / "metrics.jsonl" if path.is_dir() else path
    return [json.loads(line) for line in file.read_text().splitlines() if line.strip()]


def curve(records: list[dict], batch_size: int) -> tuple[list[int], list[float], list[tuple[int, int]]]:
    """(samples seen, validation accuracy %, [(samples seen, segments) where each stage starts])."""
    xs, ys, stages, seen = [], [], [], set()
    for r in records:
        if r["kind"] != "valid":
            continue
        x = r["global_step"] * batch_size
        if r["stage"] not in seen:
            seen.add(r["stage"])
            stages.append((x, r["segments"]))
        xs.append(x)
        ys.append(100 * r["accuracy"])
    return xs, ys, stages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders or metrics.jsonl files")
    parser.add_argument("--out", type=Path, default=RESULTS / "learning_curves.png")
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    (RESULTS / "train").mkdir(parents=True, exist_ok=True)
    for run in args.runs:
        name = run.name if run.is_dir() else run.name.removesuffix(".metrics.jsonl")
        source = run / "metrics.jsonl" if run.is_dir() else run
        if source.resolve() != (RESULTS / "train" / f"{name}.metrics.jsonl").resolve():
            shutil.copyfile(source, RESULTS / "train" / f"{name}.metrics.jsonl")
        config = run / "config.json"
        batch = json.loads(config.read_text())["batch_size"] if config.is_file() else 4
        xs, ys, stages = curve(read_metrics(run), batch)
        line, = ax.plot(xs, ys, marker=".", label=name)
        for x, segments in stages[1:]:
            ax.axvline(x, color=line.get_color(), alpha=0.3, linestyle=":")
            ax.annotate(f"{segments} seg", (x, 2), fontsize=7, color=line.get_color())
        print(f"{name}: best {max(ys):.0f}% after {xs[ys.index(max(ys))]} samples; "
              f"stages at {stages}")
    for label, value in heuristics().items():
        ax.axhline(value, color="grey", linestyle="--", linewidth=0.8)
        ax.annotate(f"heuristic: {label}", (0, value + 1), fontsize=7, color="grey")
    ax.set_ylim(0, 100)
    ax.set_xlabel("training samples seen (4 questions each at most)")
    ax.set_ylabel("validation accuracy, %")
    ax.set_title("qa1 validation exact match during training (bAbI valid split, train books)",
                 fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
