"""How much does batching speed up the hf answerer? Batched vs one prompt at a time.

The same requests (qa1-qa2 samples at 1k, 2k and 4k tokens from a gutenberg suite) are
answered by SmolLM2-135M-Instruct (dtype auto, greedy, 20 new tokens) three times in one process:
one prompt at a time through transformers' `generate` (the reference), one at a time through
the answerer (batch_size=1), and batched (batch_size=N: shared prefix encoded once, batched
decoding steps). Prints seconds for each, the ratios, and how many batched answers equal the
one-at-a-time ones (rounding differs between the two, so a few may not).

Batching can only share the decoding steps; encoding the prompts (prefill) is compute-bound
on a CPU and costs the same batched or not. So the script also times prefill alone (one
forward pass per prompt, no decoding) and prints `bound` = one_s / prefill_s, the speed-up
batching would reach if decoding cost nothing (sharing the instruction-and-examples prefix
lowers the prefill a little further, only for prompts of up to about 1k own tokens).

    python benchmarks/bench_hf_batching.py [--samples 8] [--batch-size 8] [--out FILE]
    python benchmarks/bench_hf_batching.py --model hf:MODEL --lengths 4k,32k   # on a GPU
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


def prefill_seconds(answerer, requests, config) -> float:
    """Seconds to encode every prompt once, alone, with no decoding."""
    prompts = [answerer.prompt_ids(r, config) for r in requests]
    device = answerer.model.device
    began = time.perf_counter()
    with torch.no_grad():
        for ids in prompts:
            answerer.model(input_ids=torch.tensor([ids], device=device), logits_to_keep=1)
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # the kernels queued above have run
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=8, help="per task and length")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lengths", default="1k,2k,4k")
    parser.add_argument("--model", default="hf:smollm2",
                        help="an hf: model whose window holds the lengths (SmolLM2's is 8k)")
    parser.add_argument("--out")
    args = parser.parse_args()

    suite = generate_suite(GenerateConfig(tasks="qa1,qa2", lengths=args.lengths,
                                          samples=args.samples), progress=False)
    reference = load_answerer(args.model, batch_size=1)
    reference.plain_cache = False  # transformers' generate, one prompt at a time
    one = load_answerer(args.model, batch_size=1)
    many = load_answerer(args.model, batch_size=args.batch_size)
    config = PromptConfig()
    lines = [f"# bench_hf_batching: {args.model} {one.dtype} on {one.model.device}, greedy 20 tokens, "
             f"batch {args.batch_size} vs 1",
             f"# torch {torch.__version__}, {torch.get_num_threads()} threads, "
             f"{os.cpu_count()} cpus, python {platform.python_version()}",
             f"{'length':<8}{'samples':>8}{'generate_s':>11}{'one_s':>8}{'batched_s':>10}"
             f"{'vs_one':>8}{'vs_generate':>12}{'same':>6}{'prefill_s':>11}{'bound':>7}"]
    print("\n".join(lines), flush=True)
    for length in args.lengths.split(","):
        requests = [Request(s.sample_id, s.task, s.input, s.question)
                    for task in ("qa1", "qa2") for s in suite.samples(task, length)]
        t0 = time.perf_counter()
        reference.answer(requests, config)
        t1 = time.perf_counter()
        a = one.answer(requests, config)
        t2 = time.perf_counter()
        b = many.answer(requests, config)
        t3 = time.perf_counter()
        same = sum(x.output == y.output for x, y in zip(a, b, strict=True))
        prefill = prefill_seconds(one, requests, config)
        row = (f"{length:<8}{len(requests):>8}{t1 - t0:>11.1f}{t2 - t1:>8.1f}{t3 - t2:>10.1f}"
               f"{(t2 - t1) / (t3 - t2):>7.2f}x{(t1 - t0) / (t3 - t2):>11.2f}x{same:>6}"
               f"{prefill:>11.1f}{(t2 - t1) / prefill:>6.2f}x")
        lines.append(row)
        print(row, flush=True)
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
