"""How fast does babilab generate bAbI data? 10,000 train questions for each of the 20 tasks.

Measures `generate_stories` (simulation + the split-by-hash rejection) and, separately,
formatting to v1.2 text, per task, in one process. The budget is 30 s for all 20 tasks on a
2-core machine; the script prints the ratio of the budget to the measured total.

    python benchmarks/bench_babi_generate.py [--questions 10000] [--out results.txt]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

from babilab.babi import TASK_NAMES, format_stories, generate_stories

BUDGET_S = 30.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=10_000)
    parser.add_argument("--split", default="train")
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args()

    lines = [
        f"# bench_babi_generate: {args.questions} {args.split} questions per task",
        f"# python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} cpus, "
        f"{platform.processor() or platform.platform()}",
        f"# load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"{'task':<6}{'stories':>9}{'generate_s':>12}{'format_s':>10}{'questions/s':>13}",
    ]
    print("\n".join(lines), flush=True)
    total = 0.0
    for task in TASK_NAMES:
        t0 = time.perf_counter()
        stories = generate_stories(task, args.split, args.questions, seed=0)
        t1 = time.perf_counter()
        format_stories(stories)
        t2 = time.perf_counter()
        total += t2 - t0
        row = (f"{task:<6}{len(stories):>9}{t1 - t0:>12.3f}{t2 - t1:>10.3f}"
               f"{args.questions / (t2 - t0):>13.0f}")
        lines.append(row)
        print(row, flush=True)
    scaled_budget = BUDGET_S * args.questions / 10_000
    summary = (f"total {total:.2f} s for {len(TASK_NAMES)} tasks; budget {scaled_budget:.1f} s; "
               f"budget / measured = {scaled_budget / total:.2f}x")
    lines.append(summary)
    print(summary)
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")
    sys.exit(0 if total <= scaled_budget else 1)


if __name__ == "__main__":
    main()
