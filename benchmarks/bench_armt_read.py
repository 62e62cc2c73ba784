"""ARMT's associative read in bfloat16 against the same read in float32, and both against RMT.

SmolLM2-135M-Instruct in bfloat16 (on a CPU with native bfloat16), ARMT with segment 512 and 16
memory tokens, W_V seeded small instead of zero so the memory holds something, and small write
gates so it stays finite (speed does not depend on either), random token ids. Three models read
the same segments, one step each per segment, interleaved with the order rotating so machine
noise hits all alike:

- ARMT as the package runs it: the read before every layer multiplies in bfloat16 (A rounded
  once per layer and segment, the normaliser in float32); the state and the write in float32.
- ARMT with the read in float32 (the approach before: q, phi(q) and q A in float32 and the
  result cast back), patched in here for measuring against only.
- RMT on the same segments (16 read and 16 write memory positions): what a memory step costs
  without the associative arithmetic.

It prints each one's time per segment and the ratios; then, for both ARMT reads, how far the
next-token logits after the last segment and the state A are from the same ARMT computing
everything in float32 (bfloat16's own rounding, in the backbone, is most of it).

    python benchmarks/bench_armt_read.py --threads 2          # a few minutes on 2 cores

Writes benchmarks/results/bench_armt_read.txt.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
import types
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
common = importlib.import_module("common")  # shared loading and measuring


# beta = sigmoid(-6) = 0.0025 for every write. With W_V this large and the untrained write gates
# instead, A overflowed float32 within ~20 segments of random ids (the read feeds each layer's
# input, so a large state grows the keys and values that write the next one).
WRITE_BIAS = -6.0


def float32_read(self, h: torch.Tensor, A: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """AssociativeMemory.read with every product in float32 (what it measures against)."""
    from babilab.memory.armt import EPS, dpfp

    with torch.autocast(h.device.type, enabled=False):
        q = dpfp(self._project(self.q_proj, h), self.nu)  # (B, T, K) float32
        out = (q @ A) / (q @ z.unsqueeze(-1) + EPS)  # (B, T, D)
    return out.to(h.dtype)


def build_armt(backbone, read_in_float32: bool):
    model = common.build_memory_model("armt", backbone)
    gen = torch.Generator().manual_seed(common.SEED)
    with torch.no_grad():
        for layer in model.assoc:
            w = layer.v_proj.weight
            w.copy_(0.02 * torch.randn(w.shape, generator=gen))
            layer.beta_proj.weight.zero_()
            layer.beta_proj.bias.fill_(WRITE_BIAS)
            if read_in_float32:
                layer.read = types.MethodType(float32_read, layer)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", default="32k", help="input (k = 1,000 tokens)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's, the cores)")
    parser.add_argument("--out", default=str(HERE / "results" / "bench_armt_read.txt"))
    args = parser.parse_args()
    from babilab.hardware import resolve_dtype

    if resolve_dtype("auto") != "bfloat16":
        sys.exit("bench_armt_read: this CPU has no native bfloat16, so ARMT reads in float32 "
                 "here and there is nothing to compare; run it on one that has")
    if args.threads:
        torch.set_num_threads(args.threads)
    lines: list[str] = []

    def emit(*new: str) -> None:
        lines.extend(new)
        print("\n".join(new), flush=True)
        Path(args.out).write_text("\n".join(lines) + "\n")

    emit(f"# bench_armt_read: SmolLM2-135M bfloat16, segment {common.SEGMENT}, {common.MEMORY} "
         f"memory tokens, W_V seeded (std 0.02), beta = sigmoid({WRITE_BIAS:g}), random ids, "
         f"{args.length}",
         common.machine_line(), f"# started with {common.load_text()}")
    _, backbone = common.load_backbone("bfloat16")
    models = {
        "ARMT, read in bfloat16": build_armt(backbone, read_in_float32=False),
        "ARMT, read in float32": build_armt(backbone, read_in_float32=True),
        "RMT": common.build_memory_model("rmt", backbone),
    }
    gen = torch.Generator().manual_seed(common.SEED)
    ids = torch.randint(0, backbone.config.vocab_size, (1, common.parse_length(args.length)),
                        generator=gen)  # (1, L)
    segments = list(models["RMT"].segments([ids[0]]))
    names = list(models)
    states = {name: None for name in names}
    seconds: dict[str, list[float]] = {name: [] for name in names}
    hidden = {}
    with torch.no_grad():
        for model in models.values():  # warm-up: first calls allocate and pick kernels
            model.generate(segments[:2], max_new_tokens=1)
        for i, seg in enumerate(segments):
            for name in names[i % 3:] + names[:i % 3]:
                model = models[name]
                state = states[name] if states[name] is not None else model.init_state(1)
                began = time.perf_counter()
                hidden[name], states[name] = model.step(state, seg)
                seconds[name].append(time.perf_counter() - began)
        logits = {name: models[name].logits(hidden[name][:, -1:]).float()[0, -1] for name in names}

    full = [i for i, s in enumerate(segments) if s.input_ids.shape[1] == common.SEGMENT]
    total = {name: sum(seconds[name][i] for i in full) for name in names}
    emit(f"{len(full)} segments of {common.SEGMENT} tokens, one step of each model per segment, "
         f"order rotating ({common.load_text()})")
    for name in names:
        median = statistics.median(seconds[name][i] for i in full)
        emit(f"    {name:<26}{median:8.3f} s/segment (median) "
             f"{common.SEGMENT * len(full) / total[name]:8.0f} tok/s")
    bf16, f32, rmt = (total[name] for name in names)
    emit(f"    ARMT bfloat16 read / float32 read throughput = {f32 / bf16:.3f}",
         f"    ARMT / RMT throughput: {rmt / bf16:.3f} (bfloat16 read), {rmt / f32:.3f} "
         "(float32 read)")
    # What bfloat16 changes, against the same ARMT computing everything in float32
    _, backbone32 = common.load_backbone("float32")
    model32 = build_armt(backbone32, read_in_float32=False)
    state32 = model32.init_state(1)
    with torch.no_grad():
        for seg in segments:
            h32, state32 = model32.step(state32, seg)
        logits32 = model32.logits(h32[:, -1:]).float()[0, -1]
    emit("    against the same ARMT all in float32, after the last segment (next-token logits: "
         "largest difference; the state A: relative difference):")
    for name in names[:2]:
        A = states[name].A
        emit(f"    {name:<26}logits {float((logits[name] - logits32).abs().max()):.3f} (of "
             f"{float(logits32.min()):.1f} to {float(logits32.max()):.1f}), top-1 "
             f"{'equal' if int(logits[name].argmax()) == int(logits32.argmax()) else 'differs'}; "
             f"A {float((A - state32.A).norm() / state32.A.norm()):.2%}")
    emit(f"# finished with {common.load_text()}")


if __name__ == "__main__":
    main()
