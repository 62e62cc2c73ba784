"""Where lm-evaluation-harness's babilong score and the official BABILong metric part ways,
measured on real outputs: the published predictions of Mistral-7B-Instruct-v0.2 (qa1-qa20,
0k-128k, every prompt configuration, ../shared/data/babilong-predictions-mistral-7b.tar.gz).

Each output is scored twice:
  lm-eval   lm_eval/tasks/babilong/common_utils.py process_results, called as lm-eval calls
            it: correct when the target is a substring of the stripped output (case ignored)
  official  babilab.scoring.score_babilong, the line-for-line port of booydar/babilong's
            metrics.py: first sentence only, exactly one label named (list targets: the set),
            labels that occur in the question ignored

and every disagreement is put in the first class that explains it:
  several-labels         the output names other labels too ("kitchen or garden"): official wrong
  after-the-cut          the target comes only after where the official metric stops reading
                         (the first ".", "<context>" or "<example>"): official wrong
  none-contains-one      qa7 "none": the official metric also finds "one" inside it, so it
                         never counts "none" right
  list-written-otherwise qa8 lists: "milk, apple" or "apple ... and milk" for "apple,milk":
                         lm-eval wants the exact string, official the set of labels

    python benchmarks/bench_lmeval_metric.py      # about 10 s; needs lm_eval (babilab[lmeval])

Writes benchmarks/results/bench_lmeval_metric.txt.
"""

from __future__ import annotations

import csv
import platform
import sys
import tarfile
import tempfile
from collections import Counter
from importlib.metadata import version
from pathlib import Path

from lm_eval.tasks.babilong.common_utils import process_results

from babilab.scoring import _labels, _official_preprocess, score_babilong

HERE = Path(__file__).resolve().parent
ARCHIVE = HERE.parent.parent / "shared" / "data" / "babilong-predictions-mistral-7b.tar.gz"


def lm_eval_correct(target: str, output: str) -> bool:
    return process_results({"target": target}, [output])["acc"] == 1.0


def why(task: str, target: str, output: str, question: str, lm_eval_right: bool) -> str:
    if not lm_eval_right:
        return "list-written-otherwise" if "," in target else "other"
    if task == "qa7" and target == "none":
        return "none-contains-one"
    first = _official_preprocess(output)
    if target.lower() not in first:
        return "after-the-cut"
    labels = _labels(task)
    named = {x for x in labels if x in first} - {x for x in labels if x in question.lower()}
    return "several-labels" if len(named) > 1 else "other"


def measure(folder: Path) -> tuple[dict[str, Counter], Counter]:
    per_task: dict[str, Counter] = {}
    reasons: Counter = Counter()
    for path in sorted(folder.rglob("qa*.csv")):
        task = path.name.split("_")[0]
        counts = per_task.setdefault(task, Counter())
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                target, output, question = row["target"], row["output"] or "", row["question"]
                lm, official = lm_eval_correct(target, output), score_babilong(task, target, output, question)
                counts.update(n=1, lm_eval=lm, official=official, only_lm_eval=lm and not official,
                              only_official=official and not lm)
                if lm != official:
                    reasons[why(task, target, output, question, lm)] += 1
    return per_task, reasons


def report(per_task: dict[str, Counter], reasons: Counter) -> str:
    lines = ["task       n  official  lm-eval   lm-eval only  official only"]
    total: Counter = Counter()
    for task in sorted(per_task, key=lambda t: int(t[2:])):
        c = per_task[task]
        total.update(c)
        lines.append(f"{task:<5}{c['n']:>7}{100 * c['official'] / c['n']:>9.1f}%"
                     f"{100 * c['lm_eval'] / c['n']:>8.1f}%{c['only_lm_eval']:>15}{c['only_official']:>15}")
    lines.append(f"{'all':<5}{total['n']:>7}{100 * total['official'] / total['n']:>9.1f}%"
                 f"{100 * total['lm_eval'] / total['n']:>8.1f}%{total['only_lm_eval']:>15}"
                 f"{total['only_official']:>15}")
    lines += ["", "disagreements by cause:"]
    lines += [f"  {n:>6}  {reason}" for reason, n in reasons.most_common()]
    lines += ["", f"lm_eval {version('lm_eval')}, babilab {version('babilab')}, "
                  f"Python {platform.python_version()}"]
    return "\n".join(lines)


def main() -> None:
    archive = Path(sys.argv[1]) if len(sys.argv) > 1 else ARCHIVE
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        text = report(*measure(Path(tmp)))
    print(text)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "bench_lmeval_metric.txt").write_text(
        f"# python benchmarks/bench_lmeval_metric.py ({archive.name})\n{text}\n", encoding="utf-8")


if __name__ == "__main__":
    main()
