"""How much faster is `babilab eval` split over 2 processes (torchrun) than in one?

The same suite (qa1-qa2 samples from a gutenberg suite) is evaluated with SmolLM2-135M-Instruct
(hf:smollm2, greedy, 20 new tokens) by the real command line, twice into fresh run folders:

    one:  OMP_NUM_THREADS=1 babilab eval --suite S --model hf:smollm2 --run-dir R1
    two:  torchrun --nproc_per_node 2 -m babilab.cli eval --suite S --model hf:smollm2 --run-dir R2

Every process computes with one thread (torchrun sets OMP_NUM_THREADS=1; the one-process run
is given the same), so the comparison is 1 core against 2, and the answers must be equal.
Each command is then run once more on its finished run, where there is nothing to answer: that
second run's time is the fixed cost (starting Python, loading the model, reading the suite),
and `answer_s` = wall_s - fixed_s is the time spent answering. Prints prompt tokens per second
over answering time and over the whole command, the ratios two / one, and whether the two
stores hold the same predictions.

    python benchmarks/bench_data_parallel_eval.py [--samples 8] [--lengths 1k,2k] [--out FILE]

A ratio near 2 needs 2 idle cores: on a loaded machine both runs share what is left.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from common import load_text, machine_line

from babilab.runs import RunStore
from babilab.suite import GenerateConfig, generate_suite


def timed(command: list[str]) -> float:
    """Seconds the command took; it must succeed."""
    began = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(command)}\n{proc.stderr[-2000:]}")
    return time.perf_counter() - began


def stored(run_dir: Path) -> list:
    with RunStore(run_dir, create=False) as store:
        return sorted((replace(p, elapsed_s=0.0) for p in store.predictions()),
                      key=lambda p: (p.sample_id, p.prompt_config))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=8, help="per task and length")
    parser.add_argument("--lengths", default="1k,2k")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=20)
    parser.add_argument("--out", help="also write the lines to this file")
    args = parser.parse_args()

    suite = generate_suite(GenerateConfig(tasks="qa1,qa2", lengths=args.lengths,
                                          samples=args.samples), progress=False)
    work = Path(tempfile.mkdtemp(prefix="bench_dp_"))
    options = ["--suite", str(suite.path), "--model", "hf:smollm2", "--batch-size",
               str(args.batch_size), "--max-new-tokens", str(args.max_new_tokens),
               "--device", "cpu"]
    commands = {
        # --run-dir: torchrun reads `--run` as an abbreviation of its own --run-path
        "one": [sys.executable, "-m", "babilab.cli", "eval", *options],
        "two": [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                "-m", "babilab.cli", "eval", *options],
    }
    lines = [f"# bench_data_parallel_eval: hf:smollm2 (dtype auto) on the CPU, greedy "
             f"{args.max_new_tokens} tokens, batch {args.batch_size}, 1 thread per process; "
             f"qa1-qa2 x {args.lengths} x {args.samples} samples",
             machine_line(), f"# {load_text()}",
             f"{'run':<5}{'samples':>8}{'tokens':>8}{'wall_s':>8}{'fixed_s':>8}{'answer_s':>9}"
             f"{'tok/s':>8}{'tok/s_wall':>11}"]
    print("\n".join(lines), flush=True)
    rates, results = {}, {}
    for name, command in commands.items():
        run_dir = work / name
        wall = timed([*command, "--run-dir", str(run_dir)])
        fixed = timed([*command, "--run-dir", str(run_dir)])  # all stored: start-up alone
        results[name] = stored(run_dir)
        tokens = sum(p.prompt_tokens or 0 for p in results[name])
        answer = max(wall - fixed, 1e-9)
        rates[name] = (tokens / answer, tokens / wall)
        row = (f"{name:<5}{len(results[name]):>8}{tokens:>8}{wall:>8.1f}{fixed:>8.1f}"
               f"{answer:>9.1f}{tokens / answer:>8.0f}{tokens / wall:>11.0f}")
        lines.append(row)
        print(row, flush=True)
    same = results["one"] == results["two"]
    summary = (f"two / one: {rates['two'][0] / rates['one'][0]:.2f}x answering, "
               f"{rates['two'][1] / rates['one'][1]:.2f}x whole command; "
               f"predictions {'identical' if same else 'DIFFER'} ({len(results['one'])})")
    lines.append(summary)
    print(summary, flush=True)
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
