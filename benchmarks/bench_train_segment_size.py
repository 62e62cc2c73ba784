"""Training throughput against segment size: what one trained token costs when the same
sample is cut into 128-, 256- or 512-token segments (ARMT on SmolLM2-135M, LoRA, the
campaign recipe's settings), side by side in one run.

    python benchmarks/bench_train_segment_size.py --threads 2

Each row: one optimiser step (forward, backward, AdamW) on a batch of 4 samples of 1,024
tokens (8 x 128, 4 x 256 or 2 x 512), the median of `--repeats` steps after one warm-up, in
tokens per second, and its ratio to the 512-token row. Shorter segments mean more recurrent
steps per token (the memory's read and write run once per segment and layer, and every
segment adds its memory tokens), so they cost more; the question is how much. Writes
benchmarks/results/bench_train_segment_size.txt.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"
TOKENS_PER_SAMPLE = 1024
BATCH = 4


def step_seconds(segment_size: int, repeats: int, dtype: str) -> float:
    from babilab.backbone import load_model, resolve_model
    from babilab.hardware import resolve_dtype
    from babilab.train.config import load_recipe
    from babilab.train.loop import AUTOCAST, architecture_config, build_model

    recipe = Path(__file__).resolve().parents[1] / "recipes" / "qa1_memory_armt.yaml"
    cfg = load_recipe(recipe, values={"segment_size": segment_size, "dtype": dtype})
    source, content_id, gguf = resolve_model(cfg.backbone)
    _, backbone = load_model(source, gguf, content_id, "float32")
    torch.manual_seed(0)
    model = build_model(cfg, backbone, architecture_config(cfg))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5)
    autocast = AUTOCAST[resolve_dtype(cfg.dtype, torch.device("cpu"))]
    ids = torch.randint(100, 40_000, (BATCH, TOKENS_PER_SAMPLE))
    mask = torch.ones_like(ids)
    labels = torch.full_like(ids, -100)
    labels[:, -3:] = ids[:, -3:]  # a three-token answer at the end, as in training
    times = []
    for _ in range(repeats + 1):
        began = time.perf_counter()
        with torch.autocast("cpu", autocast, enabled=autocast is not None):
            loss = model(ids, mask, labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - began)
    return statistics.median(times[1:])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--sizes", default="512,256,128")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--out", type=Path, default=RESULTS / "bench_train_segment_size.txt")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from common import load_text, machine_line

    lines = [f"# python benchmarks/bench_train_segment_size.py --threads {args.threads} "
             f"(dtype {args.dtype}, batch {BATCH} x {TOKENS_PER_SAMPLE} tokens), "
             f"{time.strftime('%Y-%m-%d')}", machine_line(), f"# {load_text()}",
             "segment  segments  s/step  tokens/s  vs 512"]
    rates = {}
    for size in (int(x) for x in args.sizes.split(",")):
        seconds = step_seconds(size, args.repeats, args.dtype)
        rates[size] = BATCH * TOKENS_PER_SAMPLE / seconds
        base = rates.get(512)
        ratio = f"{rates[size] / base:.2f}x" if base else "-"
        lines.append(f"{size:7d}  {TOKENS_PER_SAMPLE // size:8d}  {seconds:6.2f}  "
                     f"{rates[size]:8.0f}  {ratio:>6}")
        print(lines[-1], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
