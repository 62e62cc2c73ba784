"""RMT inference throughput against its hardware limit and against the reference wrapper.

SmolLM2-135M-Instruct (bfloat16 where the CPU has it, else float32), RMT with segment 512
and 16 memory tokens (untrained memory: speed does not depend on training), random token
ids. Three measurements, side by side in one run:

(a) RMT versus the bare backbone on the same segments. For every 512-token segment of the
    input, one backbone body pass over the segment alone (no LM head: the least work that reads
    it) and one RMT step (the segment plus 16 read and 16 write memory positions), interleaved
    and alternating which goes first, so machine noise hits both alike. The ratio of their
    throughputs is what RMT keeps of the hardware limit; the memory positions alone make the
    ideal 512/544 = 0.94 (target >= 0.9).
(b) Peak resident memory of RMT reading 32k, 1M and 10M tokens, each in its own process with
    the peak reset after loading (bench_memory_common.py's measurement). Target: flat within
    10%. 10M tokens take hours on 2 cores; `--memory-lengths 32k,1M` for a shorter run. A read
    stopped part way (Ctrl-C, SIGTERM) is kept, and the same command continues it ((a) and (c)
    are measured again); its time and peak then count every piece.
(c) babilab's streaming RMT versus a faithful re-implementation of the reference wrapper
    (booydar/recurrent-memory-transformer `modeling_rmt/language_modeling.py`, MemoryCell +
    RecurrentWrapper.forward): every segment goes
    through the full HF model with output_hidden_states, so LM-head logits are computed for
    every token of every segment, and every segment's logits and per-layer hidden states are
    kept and concatenated at the end. Both read the same L tokens and give the next-token
    prediction; runs alternate, medians compared (target >= 1.5x). The re-implementation lives
    here, not in the package: it is the thing we measure against.

    python benchmarks/bench_memory_throughput.py                          # all of it (hours: 10M)
    python benchmarks/bench_memory_throughput.py --memory-lengths 32k,1M --reference-lengths 8k

Writes benchmarks/results/bench_memory_throughput.txt. The load average is printed: on a shared
2-core machine absolute times vary; ratios measured side by side vary less.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
common = importlib.import_module("common")  # shared loading and measuring
long_read = importlib.import_module("long_read")  # one long read in its own process


# --------------------------------------------------------------------------------------------
# The reference wrapper, re-implemented as it is coded (for measuring against only)


class ReferenceMemoryCell(nn.Module):
    """MemoryCell of the reference: [M; E(x); M] through the full HF model (logits included)."""

    def __init__(self, base_model: nn.Module, memory: torch.Tensor):
        super().__init__()
        self.model = base_model
        self.num_mem_tokens = memory.shape[0]
        self.memory = nn.Parameter(memory.detach().clone())  # the same M_0 as the RMT it races

    def set_memory(self, input_shape: torch.Size) -> torch.Tensor:
        return self.memory.repeat(input_shape[0], 1, 1)

    def forward(self, input_ids: torch.Tensor, memory_state: torch.Tensor | None = None, **kwargs):
        if memory_state is None:
            memory_state = self.set_memory(input_ids.shape)
        seg_kwargs = self.process_input(input_ids, memory_state, **kwargs)
        out = self.model(**seg_kwargs)
        return self.process_output(out, **kwargs)

    def process_input(self, input_ids: torch.Tensor, memory_state: torch.Tensor, **kwargs) -> dict:
        seg_kwargs = dict(**kwargs)
        inputs_embeds = self.model.get_input_embeddings()(input_ids)
        inputs_embeds = torch.cat([memory_state, inputs_embeds, memory_state], dim=1)
        seg_kwargs["input_ids"] = None
        seg_kwargs["inputs_embeds"] = inputs_embeds
        if kwargs.get("attention_mask") is not None:
            mask = torch.ones(*inputs_embeds.shape[:2], dtype=torch.int64)
            mask[:, self.num_mem_tokens:self.num_mem_tokens + kwargs["attention_mask"].shape[1]] = \
                kwargs["attention_mask"]
            seg_kwargs["attention_mask"] = mask
        seg_kwargs["output_hidden_states"] = True
        return seg_kwargs

    def process_output(self, model_outputs, **kwargs):
        M = self.num_mem_tokens
        memory_state = model_outputs.hidden_states[-1][:, -M:]
        out = {"logits": model_outputs.logits[:, M:-M]}  # every token of the segment
        if kwargs.get("output_hidden_states"):
            out["hidden_states"] = [lh[:, M:-M] for lh in model_outputs.hidden_states]
        return out, memory_state


class ReferenceRecurrentWrapper(nn.Module):
    """RecurrentWrapper.forward of the reference: segment, run every cell, keep every output."""

    def __init__(self, memory_cell: ReferenceMemoryCell, segment_size: int):
        super().__init__()
        self.memory_cell = memory_cell
        self.segment_size = segment_size

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> dict:
        memory_state = None
        segmented = self.segment(input_ids=input_ids, attention_mask=attention_mask)
        cell_outputs = []
        for segment in segmented:
            cell_out, memory_state = self.memory_cell(**segment, memory_state=memory_state,
                                                      output_hidden_states=True)
            cell_outputs.append(cell_out)
        return self.process_outputs(cell_outputs)

    def segment(self, **kwargs) -> list[dict]:
        segments: list[dict] = []
        for k, tensor in kwargs.items():
            if tensor is not None:
                for s, k_seg in enumerate(self.split_tensor(tensor)):
                    if s < len(segments):
                        segments[s][k] = k_seg
                    else:
                        segments.append({k: k_seg})
        return segments

    def split_tensor(self, tensor: torch.Tensor) -> list[torch.Tensor]:  # align "left"
        split_inds = list(range(0, tensor.shape[1], self.segment_size)) + [tensor.shape[1]]
        return [tensor[:, a:b] for a, b in zip(split_inds, split_inds[1:], strict=False)]

    def process_outputs(self, cell_outputs: list[dict]) -> dict:
        full_logits = torch.cat([o["logits"] for o in cell_outputs], dim=1)
        full_hidden_states = tuple(torch.cat(layer_hs, dim=1)
                                   for layer_hs in zip(*[o["hidden_states"] for o in cell_outputs],
                                                       strict=True))
        return {"loss": 0, "logits": full_logits, "hidden_states": full_hidden_states}


# --------------------------------------------------------------------------------------------
# Measurements


def paired_segments(model, backbone, segments: list, rounds: int) -> tuple[list[float], list[float]]:
    """(a): per segment, the backbone body on it alone and one RMT step on it, interleaved."""
    bare_s, rmt_s = [], []
    with torch.no_grad():
        for r in range(rounds):
            model.reset()
            for i, seg in enumerate(segments):
                pair = {}
                for which in (("bare", "rmt") if (i + r) % 2 == 0 else ("rmt", "bare")):
                    began = time.perf_counter()
                    if which == "bare":
                        backbone.base_model(input_ids=seg.input_ids, attention_mask=seg.attention_mask)
                    else:
                        model.read(seg)
                    pair[which] = time.perf_counter() - began
                bare_s.append(pair["bare"])
                rmt_s.append(pair["rmt"])
    return bare_s, rmt_s


def whole_runs(model, reference, ids: torch.Tensor, runs: int) -> tuple[list[float], list[float], float]:
    """(c): read all of `ids` and predict the next token, alternating babilab and reference."""
    ours_s, ref_s, kept_mb = [], [], 0.0
    with torch.no_grad():
        for r in range(runs):
            for which in (("ours", "ref") if r % 2 == 0 else ("ref", "ours")):
                began = time.perf_counter()
                if which == "ours":
                    model.generate(model.segments([ids[0]]), max_new_tokens=1)
                    ours_s.append(time.perf_counter() - began)
                else:
                    out = reference(ids, torch.ones_like(ids))
                    int(out["logits"][0, -1].argmax())
                    ref_s.append(time.perf_counter() - began)
                    kept = [out["logits"], *out["hidden_states"]]
                    kept_mb = sum(t.numel() * t.element_size() for t in kept) / 2**20
                    del out, kept
    return ours_s, ref_s, kept_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", default="8k", help="(a): input (k = 1,000 tokens)")
    parser.add_argument("--rounds", type=int, default=2, help="(a): passes over the input")
    parser.add_argument("--runs", type=int, default=3, help="(c): runs of each, alternating")
    parser.add_argument("--reference-lengths", default="8k,32k",
                        help="(c): inputs; the reference keeps ~128 MB per 1k tokens")
    parser.add_argument("--memory-lengths", default="32k,1M,10M", help="(b); '' to skip")
    parser.add_argument("--dtype", default="auto",
                        help="auto: bfloat16 where the hardware has it, else float32")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's, the cores)")
    parser.add_argument("--out", default=str(HERE / "results" / "bench_memory_throughput.txt"))
    args = parser.parse_args()
    # SIGTERM as an exception: subprocess.run then kills the measuring child instead of orphaning it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    from babilab.hardware import resolve_dtype

    args.dtype = resolve_dtype(args.dtype)
    if args.threads:
        torch.set_num_threads(args.threads)

    length = common.parse_length(args.length)
    lines: list[str] = []

    def emit(*new: str) -> None:
        lines.extend(new)
        print("\n".join(new), flush=True)
        Path(args.out).write_text("\n".join(lines) + "\n")  # partial runs keep their results

    emit(f"# bench_memory_throughput: SmolLM2-135M {args.dtype}, RMT segment {common.SEGMENT}, "
         f"{common.MEMORY} memory tokens, untrained memory, random ids",
         common.machine_line(), f"# started with {common.load_text()}")
    _, backbone = common.load_backbone(args.dtype)
    model = common.build_memory_model("rmt", backbone)
    gen = torch.Generator().manual_seed(common.SEED)
    ids = torch.randint(0, backbone.config.vocab_size, (1, length), generator=gen)  # (1, L)
    segments = list(model.segments([ids[0]]))
    with torch.no_grad():  # warm-up: first calls allocate and pick kernels
        model.generate(segments[:2], max_new_tokens=1)
        backbone.base_model(input_ids=segments[0].input_ids)

    bare, rmt = paired_segments(model, backbone, segments, args.rounds)
    full = [i for i, s in enumerate(segments * args.rounds) if s.input_ids.shape[1] == common.SEGMENT]
    bare_f, rmt_f = [bare[i] for i in full], [rmt[i] for i in full]
    ratio_sum = sum(bare_f) / sum(rmt_f)
    ratio_pairs = statistics.median(b / r for b, r in zip(bare_f, rmt_f, strict=True))
    ideal = common.SEGMENT / (common.SEGMENT + 2 * common.MEMORY)
    emit(f"(a) RMT vs the bare backbone on the same {common.SEGMENT}-token segments ({len(full)} "
         f"pairs over {args.rounds} passes of {args.length}; {common.load_text()})",
         f"    {'backbone body, segment alone':<42}{statistics.median(bare_f):8.3f} s/segment "
         f"{common.SEGMENT * len(full) / sum(bare_f):8.0f} tok/s",
         f"    {'RMT step, segment + 2x16 memory positions':<42}{statistics.median(rmt_f):8.3f} "
         f"s/segment {common.SEGMENT * len(full) / sum(rmt_f):8.0f} tok/s",
         f"    RMT throughput / backbone throughput = {ratio_sum:.3f} (totals), {ratio_pairs:.3f} "
         f"(median of pairs); ideal {ideal:.3f} (memory positions), target >= 0.9")

    torch.manual_seed(common.SEED)
    reference = ReferenceRecurrentWrapper(ReferenceMemoryCell(backbone, model.memory),
                                          common.SEGMENT).eval()
    body = sum(p.numel() for p in backbone.base_model.parameters())
    body -= backbone.get_input_embeddings().weight.numel()
    head = backbone.get_output_embeddings().weight.numel()
    emit(f"(c) read L tokens and predict the next, {args.runs} runs each, alternating; the LM head "
         f"on every token adds {100 * head / body:.0f}% to the body's weight FLOPs")
    for name in [x.strip() for x in args.reference_lengths.split(",") if x.strip()]:
        n = common.parse_length(name)
        ids_c = torch.randint(0, backbone.config.vocab_size, (1, n), generator=gen)  # (1, L)
        ours, ref, kept_mb = whole_runs(model, reference, ids_c, args.runs)
        speedup = statistics.median(ref) / statistics.median(ours)
        emit(f"    L = {name} ({common.load_text()})",
             f"    {'babilab RMT (streaming, answer-only logits)':<50}{statistics.median(ours):8.1f} s "
             f"{n / statistics.median(ours):8.0f} tok/s  (runs: {', '.join(f'{x:.1f}' for x in ours)})",
             f"    {'reference wrapper (full logits, all kept)':<50}{statistics.median(ref):8.1f} s "
             f"{n / statistics.median(ref):8.0f} tok/s  (runs: {', '.join(f'{x:.1f}' for x in ref)})",
             f"    reference outputs kept at the end: {kept_mb:.0f} MB ({kept_mb / n * 1000:.1f} MB per "
             f"1k tokens: {kept_mb / n * 1e6 / 1024:.0f} GB at 1M tokens)",
             f"    babilab / reference throughput = {speedup:.2f}x, target >= 1.5x")
    del reference, model, backbone

    names = [x.strip() for x in args.memory_lengths.split(",") if x.strip()]
    if names:
        emit("(b) RMT peak RSS reading L tokens, each in its own process (peak reset after load)",
             f"    {'length':>8}{'seconds':>10}{'tok/s':>8}{'loaded MB':>11}{'peak MB':>9}  load")
        peaks = []
        for name in names:
            r = long_read.measure("rmt", common.parse_length(name), args.dtype, args.threads)
            if "skipped" in r:
                emit(f"    {name:>8}  ({r['skipped']})")
                continue
            peaks.append(r["peak_mb"])
            emit(f"    {name:>8}{r['seconds']:>10.0f}{r['tokens_per_s']:>8.0f}{r['loaded_mb']:>11.0f}"
                 f"{r['peak_mb']:>9.0f}  {r['load'][0]:.2f}"
                 + long_read.pieces_text(r))
        if len(peaks) > 1:
            emit(f"    peak RSS spread: +{100 * (max(peaks) / min(peaks) - 1):.1f}% from "
                 f"{names[0]} to {names[-1]}, target within 10%")
    emit(f"# finished with {common.load_text()}; pid {os.getpid()}")


if __name__ == "__main__":
    main()
