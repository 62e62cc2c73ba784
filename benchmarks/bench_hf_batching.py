"""How much does batching speed up the hf answerer? Batched vs one prompt at a time.

The same requests (qa1-qa2 samples at 1k, 2k and 4k tokens from a gutenberg suite) are
answered by SmolLM2-135M-Instruct (bf16, greedy, 20 new tokens) twice in one process: with
batch_size=1 and with batch_size=N (left padding, sorted by length). Prints samples/s for
both and the ratio, per length.

    python benchmarks/bench_hf_batching.py [--samples 8] [--batch-size 8] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from babilab.models import Request, load_answerer
from babilab.prompts import PromptConfig
from babilab.suite import GenerateConfig, generate_suite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=8, help="per task and length")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lengths", default="1k,2k,4k")
    parser.add_argument("--out")
    args = parser.parse_args()

    suite = generate_suite(GenerateConfig(tasks="qa1,qa2", lengths=args.lengths,
                                          samples=args.samples), progress=False)
    one = load_answerer("hf:smollm2", batch_size=1)
    many = load_answerer("hf:smollm2", batch_size=args.batch_size)
    config = PromptConfig()
    lines = [f"# bench_hf_batching: SmolLM2-135M-Instruct bf16, greedy 20 tokens, "
             f"batch {args.batch_size} vs 1",
             f"# torch {torch.__version__}, {torch.get_num_threads()} threads, "
             f"{os.cpu_count()} cpus, python {platform.python_version()}",
             f"{'length':<8}{'samples':>8}{'one_s':>9}{'batched_s':>11}{'ratio':>8}{'same':>6}"]
    print("\n".join(lines), flush=True)
    for length in args.lengths.split(","):
        requests = [Request(s.sample_id, s.task, s.input, s.question)
                    for task in ("qa1", "qa2") for s in suite.samples(task, length)]
        t0 = time.perf_counter()
        a = one.answer(requests, config)
        t1 = time.perf_counter()
        b = many.answer(requests, config)
        t2 = time.perf_counter()
        same = sum(x.output == y.output for x, y in zip(a, b, strict=True))
        row = (f"{length:<8}{len(requests):>8}{t1 - t0:>9.1f}{t2 - t1:>11.1f}"
               f"{(t1 - t0) / (t2 - t1):>7.2f}x{same:>6}")
        lines.append(row)
        print(row, flush=True)
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
