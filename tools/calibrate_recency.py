"""Fit a task's recency sampling weights so that generated data matches a target table.

Questions can only be asked about facts that exist and are still the latest of their kind,
so drawing k from the spec's table directly over-weights small k. This repeats
"generate, measure, rescale each weight by target/measured" until the measured table fits.

    python tools/calibrate_recency.py qa1 45.2,29.0,13.3,8.6,4.0 [--attr RECENCY]

Prints the weights to paste into the task module's sampling constant.
"""

import argparse
import importlib

from babilab.babi.generate import generate_stories
from babilab.babi.stats import compute_stats

parser = argparse.ArgumentParser()
parser.add_argument("task")
parser.add_argument("target", help="comma-separated % for k = 0, 1, ...")
parser.add_argument("--attr", default="RECENCY", help="the module constant holding the weights")
parser.add_argument("--rounds", type=int, default=8)
parser.add_argument("--questions", type=int, default=20000)
args = parser.parse_args()

module = importlib.import_module(f"babilab.babi.tasks.{args.task}")
target = [float(x) for x in args.target.split(",")]
weights = list(target)
for round_ in range(args.rounds):
    setattr(module, args.attr, tuple(weights))
    stories = generate_stories(args.task, "train", args.questions, seed=1000 + round_)
    measured = compute_stats(stories)[args.task].as_dict()["recency"]
    got = [measured[str(k)] for k in range(len(weights))]
    print(f"round {round_}: measured {[round(x, 1) for x in got]}")
    weights = [w * t / max(g, 0.01) for w, t, g in zip(weights, target, got, strict=True)]
    weights = [100 * w / sum(weights) for w in weights]
print(tuple(round(w, 1) for w in weights))
