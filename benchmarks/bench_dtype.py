"""Is bfloat16 faster than float32 on this CPU? The product that decides `--dtype auto`.

A 512x576 by 576x1536 matrix product (one 512-token segment through a SmolLM2-135M MLP
projection) in float32 and in bfloat16, alternating, on one thread; prints GFLOP/s for each
and the ratio bfloat16 / float32, and what `babilab.hardware` decides for this CPU. On CPUs
with AVX512-BF16 or AMX the ratio is above 1; where bfloat16 is emulated (AVX2 alone) it is
far below 1, which is why `auto` picks float32 there.

    python benchmarks/bench_dtype.py [--repeats 20] [--out FILE]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from babilab.hardware import native_bfloat16, resolve_dtype

M, K, N = 512, 576, 1536


def cpu_name() -> str:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def seconds(dtype: torch.dtype, repeats: int) -> list[float]:
    a, b = torch.randn(M, K).to(dtype), torch.randn(K, N).to(dtype)
    a @ b  # warm up: kernels are chosen (and for oneDNN compiled) on first use
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - began)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", help="also write the report to this file")
    args = parser.parse_args()
    torch.set_num_threads(1)
    flops = 2 * M * K * N
    f32, bf16 = [], []
    for _ in range(3):  # alternate, so a change in the machine's load hits both
        f32 += seconds(torch.float32, args.repeats)
        bf16 += seconds(torch.bfloat16, args.repeats)
    rate32 = flops / statistics.median(f32) / 1e9
    rate16 = flops / statistics.median(bf16) / 1e9
    lines = [
        f"# bench_dtype: {M}x{K} @ {K}x{N} on 1 thread, median of {len(f32)} products each",
        f"# {cpu_name()}; native bfloat16: {native_bfloat16()}; torch {torch.__version__}",
        f"float32   {rate32:8.1f} GFLOP/s",
        f"bfloat16  {rate16:8.1f} GFLOP/s",
        f"bfloat16 / float32 = {rate16 / rate32:.2f}x; dtype auto -> {resolve_dtype('auto')}",
    ]
    report = "\n".join(lines)
    print(report)
    if args.out:
        with open(args.out, "w") as f:
            f.write(report + "\n")


if __name__ == "__main__":
    main()
