"""One qa1 sample of up to 10M tokens end to end through a memory answerer, resumable.

    python benchmarks/bench_memory_qa1.py --length 10M            # hours on 2 CPU cores
    python benchmarks/bench_memory_qa1.py --length 1M --arch armt
    python benchmarks/bench_memory_qa1.py --length 32k      # minutes: a short read to compare

The sample is built by `babilab.suite` (lengths counted in SmolLM2 tokens, so the model reads
exactly that many) and answered through the answerer `babilab eval --model rmt:CKPT` uses:
tokenizing the text, streaming segments, generating, with a progress bar on stderr and a line
of RSS every minute. The memory is untrained (seeded): time and memory do not depend on it.

Long reads outlive sessions, so the work is kept in out/bench_memory_qa1/ARCH-LENGTH-DTYPE/
(ARCH-LENGTH-DTYPE-cuda/ on a GPU, used by default when torch sees one):
suite/, checkpoint/, partial/ (the answerer's saved read: its memory state, every
--save-every seconds) and pieces.json (each run's time, segments and peak RSS, updated every
minute). A run that is stopped part way continues when the same command is run again: from
where it stopped after Ctrl-C or SIGTERM (the read is saved on the way out), from the last
save after kill -9 or the machine going away; the result counts every piece, the
segments read again after a kill included.

While a piece runs, its progress record is the work folder's progress.txt; once the answer
is made, the result goes to benchmarks/results/bench_memory_qa1_ARCH_LENGTH_DTYPE[_cuda].txt,
with the GPU's peak allocated memory beside the process's peak RSS on a GPU, and its time and
peak RSS to the .json beside it, which bench_memory_scaling.py draws in its plot. The record
ends with every finished read of the same architecture side by side (run --length 32k, 1M and
10M for peak memory across lengths, all through the same answerer).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from common import (
    MEMORY,
    RESULTS,
    SEGMENT,
    build_memory_model,
    cpu_kind,
    gemm_gflops,
    load_backbone,
    load_text,
    machine_line,
    peak_rss_mb,
    qa1_points,
    reset_peak_rss,
    rss_mb,
    write_json,
)

WORK = Path(__file__).resolve().parents[1] / "out" / "bench_memory_qa1"


def prepare(args: argparse.Namespace, work: Path) -> None:
    """The suite and the untrained checkpoint, once per work folder."""
    import shutil

    from babilab.models.memory import save_checkpoint
    from babilab.suite import GenerateConfig, generate_suite

    if (work / "checkpoint" / "memory_config.json").is_file():
        return
    began = time.perf_counter()
    tokenizer, backbone = load_backbone(args.dtype)
    folder = backbone.config._name_or_path  # the converted SmolLM2 folder: lengths in its tokens
    generate_suite(GenerateConfig(tasks="qa1", lengths=args.length, samples=1, tokenizer=folder),
                   out=work / "suite", progress=True)
    tmp = work / "checkpoint.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    save_checkpoint(build_memory_model(args.arch, backbone), tokenizer, tmp)
    write_json(work / "prepared.json", {"seconds": time.perf_counter() - began})
    tmp.rename(work / "checkpoint")  # last: a checkpoint folder means all is prepared


# --------------------------------------------------------------------------------------------
# One piece: load the answerer, continue the read, answer (in its own process: its own RSS)


def piece(args: argparse.Namespace, work: Path) -> dict:
    import torch

    from babilab.models import load_answerer
    from babilab.prompts import PromptConfig
    from babilab.runs.evaluate import request_of
    from babilab.suite import Suite

    on_gpu = args.device == "cuda"
    gemm = None if on_gpu else round(gemm_gflops())  # the CPU's speed as this piece starts
    began = time.perf_counter()
    answerer = load_answerer(f"{args.arch}:{work / 'checkpoint'}", dtype=args.dtype,
                             device=args.device, progress=True, save_every_s=args.save_every)
    answerer.resume_dir = work / "partial"
    sample = next(iter(Suite(work / "suite").samples("qa1", args.length)))
    pieces_path = work / "pieces.json"
    pieces = json.loads(pieces_path.read_text()) if pieces_path.exists() else []
    mine = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "load_s": time.perf_counter() - began,
            "loaded_mb": rss_mb(), "load_start": load_text(), "first_segment": None,
            "gemm_gflops": gemm, "segments": 0, "total_segments": None, "seconds": 0.0,
            "peak_mb": 0.0, "cpu": cpu_kind(),
            "device": (torch.cuda.get_device_name() if on_gpu
                       else f"CPU, {torch.get_num_threads()} threads"), "finished": False}
    pieces.append(mine)
    reset_peak_rss()
    began = time.perf_counter()

    read = {}  # the answerer's last report: segments written to memory so far

    def on_segment(first: int, written: int, total: int) -> None:
        read.update(first_segment=first, segments=written, total_segments=total)

    answerer.on_segment = on_segment

    def update() -> None:
        mine.update(read)
        if "tokenize_s" in mine:
            mine["peak_mb"] = peak_rss_mb()
            if on_gpu:
                mine["gpu_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
        mine.update(seconds=time.perf_counter() - began, load_end=load_text())
        write_json(pieces_path, pieces)

    stop = threading.Event()

    def monitor() -> None:
        while not stop.wait(1.0) and not read:
            pass  # tokenizing the text: the first segment's report starts the reading
        if stop.is_set():
            return
        mine.update(tokenize_s=time.perf_counter() - began, tokenize_peak_mb=peak_rss_mb())
        reset_peak_rss()  # from here on, the peak of reading segments
        if on_gpu:
            torch.cuda.reset_peak_memory_stats()
        while not stop.wait(60.0):
            update()
            line = (f"{mine['seconds']:8.0f} s  segments {mine['first_segment']}+{mine['segments']}"
                    f"/{mine['total_segments']}  rss {rss_mb():6.0f} MB  peak {mine['peak_mb']:6.0f} MB"
                    f"  {mine['load_end']}")
            print(f"[monitor] {line}", file=sys.stderr, flush=True)
            (work / "progress.txt").write_text(report(args, work, pieces, running=line))

    update()
    watcher = threading.Thread(target=monitor, daemon=True)
    watcher.start()
    try:  # stopped (Ctrl-C, SIGTERM), the answerer saves its read and the record is brought up to date
        answer = answerer.answer([request_of(sample)], PromptConfig())[0]
    finally:
        stop.set()
        watcher.join()
        update()
    n_total = answer.extra["segments"]
    mine.update(finished=True, segments=n_total - answer.extra.get("resumed_at", 0),
                first_segment=answer.extra.get("resumed_at", 0), total_segments=n_total)
    write_json(pieces_path, pieces)
    result = {"sample_id": sample.sample_id, "context_tokens": sample.context_tokens,
              "context_chars": len(sample.input), "question": sample.question,
              "target": sample.target, "output": answer.output,
              "prompt_tokens": answer.prompt_tokens, "segments": n_total}
    write_json(work / "answer.json", result)
    return result


# --------------------------------------------------------------------------------------------
# The record


def point(args: argparse.Namespace, work: Path, pieces: list[dict]) -> dict:
    """The finished read as one point of bench_memory_scaling's plot: its reading rate over
    all pieces (tokenizing left out, as the scaling rows have none) times the sample's segments,
    and its peak RSS while reading."""
    done = json.loads((work / "answer.json").read_text())
    reads = [p for p in pieces if "tokenize_s" in p]
    reading = sum(p["seconds"] - p["tokenize_s"] for p in reads)
    per_segment = reading / sum(p["segments"] for p in reads)
    # pieces from before the CPU was recorded per piece: the kind of the machine writing this
    cpus = dict.fromkeys(p.get("cpu", cpu_kind()) for p in reads)
    return {"arch": args.arch, "length": args.length, "dtype": args.dtype, "device": args.device,
            "cpu": " and ".join(cpus), "prompt_tokens": done["prompt_tokens"], "segments": done["segments"],
            "s_per_segment": per_segment, "seconds": per_segment * done["segments"],
            "peak_mb": max(p["peak_mb"] for p in reads)}


def across_lengths(args: argparse.Namespace) -> str:
    """This architecture's finished reads (same dtype and device) side by side: linear time
    shows as a constant s/segment, flat memory as a small spread of the peaks."""
    points = [p for p in qa1_points(args.dtype, args.device) if p["arch"] == args.arch]
    lines = [f"# every finished read of {args.arch} ({args.dtype}, {args.device}) recorded here: "
             "length, reading s/segment, peak RSS MB while reading"]
    lines += [f"  {p['length']:>6}  {p['s_per_segment']:.3f}  {p['peak_mb']:.0f}" for p in points]
    if len(points) > 1:
        first, last = points[0]["peak_mb"], points[-1]["peak_mb"]
        lines.append(f"  peak RSS {first:.0f} -> {last:.0f} MB ({100 * (last / first - 1):+.1f}%) "
                     f"from {points[0]['length']} to {points[-1]['length']}")
    return "\n".join(lines) + "\n"


def report(args: argparse.Namespace, work: Path, pieces: list[dict], running: str = "") -> str:
    prepared = json.loads((work / "prepared.json").read_text())["seconds"]
    done = json.loads((work / "answer.json").read_text()) if not running else None
    seconds = sum(p["seconds"] for p in pieces)
    read = sum(p["segments"] for p in pieces)
    total = next((p["total_segments"] for p in reversed(pieces) if p["total_segments"]), None)
    lines = [f"# bench_memory_qa1 --length {args.length} --arch {args.arch}: one qa1 sample end to "
             f"end through the {args.arch} answerer (untrained SmolLM2-135M-{args.arch.upper()}, "
             f"{args.dtype}, segment {SEGMENT}, {MEMORY} memory tokens)",
             machine_line(),
             f"# suite and checkpoint prepared in {prepared:.0f} s; work folder "
             f"{work.relative_to(WORK.parents[1])}"]
    if running:
        lines.append(f"status            RUNNING (pid {os.getpid()}): {running}")
    else:
        lines += [
            f"# sample: {done['sample_id']}, {done['context_tokens']} context tokens "
            f"({done['context_chars']} chars), question {done['question']!r}, target "
            f"{done['target']!r}",
            f"answer            {done['output']!r} (untrained memory: not expected to be right)",
            f"prompt tokens     {done['prompt_tokens']} in {done['segments']} segments",
        ]
    reads = [p for p in pieces if "tokenize_s" in p]  # pieces that got as far as reading
    tokenizing = sum(p["tokenize_s"] for p in reads)
    reading = sum(p["seconds"] for p in reads) - tokenizing
    gpu_peaks = [p["gpu_peak_mb"] for p in reads if "gpu_peak_mb" in p]
    lines += [
        f"pieces            {len(pieces)} run(s); {read} segments read for the {total} of the "
        "sample (segments read again after a stop included)",
        f"answer time       {seconds:.0f} s = {seconds / 3600:.2f} h over all pieces, of which "
        f"{tokenizing:.0f} s tokenizing the text "
        + ("(once)" if len(reads) == 1 else
           f"({len(reads)} times: once in each piece that got as far as reading)"),
        f"reading           {reading / max(read, 1):.3f} s/segment, "
        f"{read * SEGMENT / max(reading, 1e-9):.0f} tok/s",
        f"RSS               peak {max((p['peak_mb'] for p in reads), default=0):.0f} MB while "
        f"reading segments ({reads[-1]['peak_mb'] if reads else 0:.0f} MB in the last piece); "
        f"{max((p['tokenize_peak_mb'] for p in reads), default=0):.0f} MB "
        f"while tokenizing; {min(p['loaded_mb'] for p in pieces):.0f} MB after loading the "
        "answerer and the sample",
        *([f"GPU memory        peak {max(gpu_peaks):.0f} MB allocated while reading segments"]
          if gpu_peaks else []),
        *([f"CPU kinds         {' and '.join(cpus)}: pieces read on different CPUs"]
          if len(cpus := dict.fromkeys(p["cpu"] for p in pieces if "cpu" in p)) > 1 else []),
        "# per piece: start, device, load s (answerer and sample), tokenize s, first segment, "
        "segments read, seconds, reading s/segment, peak MB reading, load average start -> end, "
        "float32 GEMM GFLOP/s at the start (the machine's speed then)",
    ]
    for p in pieces:
        busy = p["seconds"] - p.get("tokenize_s", p["seconds"])
        rate = f"{busy / p['segments']:.3f}" if p["segments"] else "-"
        lines.append(f"  {p['started']}  {p['device']}  {p['load_s']:.0f}  "
                     f"{p.get('tokenize_s', 0):.0f}  {p['first_segment']}  {p['segments']}  "
                     f"{p['seconds']:.0f}  {rate}  {p['peak_mb']:.0f}  "
                     f"{p['load_start'][13:]} -> {p.get('load_end', '')[13:]}  "
                     f"{p.get('gemm_gflops') or '-'}"
                     f"{'' if p['finished'] else '  (stopped part way; if killed, as of its last minute)'}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", default="10M", help="the sample's length, e.g. 64k, 1M, 10M")
    parser.add_argument("--arch", default="rmt", choices=["rmt", "rmt_r", "armt"])
    parser.add_argument("--dtype", default="auto",
                        help="auto: bfloat16 where the hardware has it, else float32")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's, the cores)")
    parser.add_argument("--device", choices=["cpu", "cuda"],
                        help="default: cuda when there is a GPU, else cpu")
    parser.add_argument("--save-every", type=float, default=600.0,
                        help="seconds between saves of the memory state while reading")
    parser.add_argument("--piece", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    # SIGTERM as an exception: the answering child saves its read, the parent passes it on
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    import torch

    from babilab.hardware import resolve_dtype

    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no GPU here")
    args.dtype = resolve_dtype(args.dtype, torch.device(args.device))
    if args.threads:
        torch.set_num_threads(args.threads)
    name = f"{args.arch}-{args.length}-{args.dtype}" + ("-cuda" if args.device == "cuda" else "")
    work = WORK / name
    record = RESULTS / f"bench_memory_qa1_{name.replace('-', '_')}.txt"
    if args.piece:
        print(json.dumps(piece(args, work)), flush=True)
        return
    if (work / "answer.json").exists():
        print(f"already answered; remove {work} to measure again", file=sys.stderr)
    else:
        work.mkdir(parents=True, exist_ok=True)
        prepare(args, work)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--piece", "--length", args.length,
               "--arch", args.arch, "--dtype", args.dtype, "--device", args.device,
               "--save-every", str(args.save_every)]
        cmd += ["--threads", str(args.threads)] if args.threads else []
        child = subprocess.Popen(cmd)
        try:
            code = child.wait()
        except KeyboardInterrupt:  # Ctrl-C reached the child too: it saves its read and exits
            child.wait()
            raise
        except SystemExit:  # SIGTERM: passed on, with the same effect
            child.terminate()
            child.wait()
            raise
        if code:
            raise SystemExit("the answering process failed; run the same command to continue")
    pieces = json.loads((work / "pieces.json").read_text())
    write_json(record.with_suffix(".json"), point(args, work, pieces))
    text = report(args, work, pieces) + across_lengths(args)
    record.write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
