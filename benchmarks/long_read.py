"""One long read of random tokens, in a process of its own (so its peak RSS is its own), that a
stop does not lose: `measure(arch, length)` runs this file as a child and returns its record.
bench_memory_scaling.py draws its rows from it, bench_memory_throughput.py's (b) its peaks.

A memory model's read stopped part way (Ctrl-C, SIGTERM) is kept in out/bench_memory_scaling/
and the same call continues it; the record then counts the time and peak RSS of every piece.

    python benchmarks/long_read.py rmt 65536 --dtype bfloat16     # one record, as JSON
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from common import (
    MEMORY,
    SEED,
    SEGMENT,
    build_memory_model,
    cpu_kind,
    gemm_gflops,
    load_backbone,
    peak_rss_mb,
    reset_peak_rss,
    rss_mb,
)

from babilab.outputs import write_text_atomic

WORK = Path(__file__).resolve().parents[1] / "out" / "bench_memory_scaling"  # stopped long reads


def random_segments(n_tokens: int, segment_size: int, vocab: int, seed: int = SEED) -> Iterator:
    """SegmentBatch steps of one sample of random ids, made one at a time (nothing kept)."""
    import torch

    from babilab.memory import SegmentBatch, split_points

    gen = torch.Generator().manual_seed(seed)
    for a, b in split_points(n_tokens, segment_size):
        ids = torch.randint(0, vocab, (1, b - a), generator=gen)  # (1, T)
        yield SegmentBatch(ids, torch.ones_like(ids))


def state_mb(state) -> float:
    """Bytes held by a memory state's tensors (RMT-R's stored keys and values included)."""
    import dataclasses

    import torch

    if state is None:
        return 0.0
    total = sum(v.numel() * v.element_size() for f in dataclasses.fields(state)
                if isinstance(v := getattr(state, f.name), torch.Tensor))
    return total / 2**20


# --------------------------------------------------------------------------------------------
# One measurement (runs in its own process)


def worker(arch: str, length: int, dtype: str, progress: bool) -> dict:
    """Read `length` random tokens with `arch` and predict the next one; time and memory."""
    import torch
    from tqdm import tqdm

    load0, gemm0 = os.getloadavg(), gemm_gflops()
    _, backbone = load_backbone(dtype)
    vocab = backbone.config.vocab_size
    window = backbone.config.max_position_embeddings
    result = {"arch": arch, "length": length, "threads": torch.get_num_threads()}
    if arch == "backbone":
        if length > window:
            return {**result, "skipped": f"over the {window}-token window", "over_window": True}
        gen = torch.Generator().manual_seed(SEED)
        with torch.no_grad():
            backbone(input_ids=torch.randint(0, vocab, (1, 64), generator=gen), logits_to_keep=1)
            ids = torch.randint(0, vocab, (1, length), generator=gen)  # (1, L)
            result["loaded_mb"] = rss_mb()
            reset_peak_rss()
            began = time.perf_counter()
            logits = backbone(input_ids=ids, logits_to_keep=1).logits  # (1, 1, V)
            int(logits[0, -1].argmax())
            seconds = time.perf_counter() - began
        segments, state, peak, pieces = 1, 0.0, peak_rss_mb(), []
    else:
        model = build_memory_model(arch, backbone)
        model.generate(random_segments(2 * SEGMENT, SEGMENT, vocab, SEED + 1), max_new_tokens=1)
        result["loaded_mb"] = rss_mb()
        reset_peak_rss()
        segments = -(-length // SEGMENT)
        read = StoppableRead(arch, length, dtype)
        start, state = read.load(model)
        steps = tqdm(itertools.islice(random_segments(length, SEGMENT, vocab), start, None),
                     total=segments, initial=start, unit="seg", desc=f"{arch} {length}",
                     leave=False, mininterval=5, disable=not progress or segments < 64)
        try:
            model.generate(steps, max_new_tokens=1, segments_total=segments, state=state,
                           on_read=lambda n: read.update(model, start + n))
        except BaseException:  # SIGTERM, Ctrl-C: keep what was read for the next run
            read.stop()
            raise
        seconds, peak, pieces = read.finish()
        state = state_mb(model.state)
    load1, gemm1 = os.getloadavg(), gemm_gflops()
    return {**result, "seconds": seconds, "tokens_per_s": length / seconds, "segments": segments,
            "peak_mb": peak, "state_mb": state, **pieces_note(pieces),
            "load": [round((a + b) / 2, 2) for a, b in zip(load0, load1, strict=True)],
            "gemm_gflops": [round(gemm0), round(gemm1)]}


class StoppableRead:
    """A long read that a stop does not lose. The memory state is saved (babilab's SavedRead:
    every 10 minutes and when stopped) in out/bench_memory_scaling/ARCH-LENGTH-DTYPE/, with
    pieces.json beside it: the time, peak RSS and CPU kind of the segments each save covers.
    The same command then continues the read, and its time and peak count every piece."""

    def __init__(self, arch: str, length: int, dtype: str, every_s: float = 600.0):
        from babilab.models.memory import SavedRead

        folder = WORK / f"{arch}-{length}-{dtype}"
        key = hashlib.sha256(f"{arch} {length} {dtype} {SEED} {SEGMENT} {MEMORY}".encode())
        self.saved = SavedRead(folder, key.hexdigest(), every_s)
        self.pieces_path = folder / "pieces.json"
        self.cpu = cpu_kind()  # pieces read on another kind of CPU are named in the row

    def load(self, model) -> tuple[int, object]:
        """(segments already read, state) to continue from; the clock starts here."""
        self.start, state = self.saved.load(model)
        self.earlier = (json.loads(self.pieces_path.read_text())
                        if self.start and self.pieces_path.is_file() else [])
        self.began = time.perf_counter()
        return self.start, state

    def update(self, model, read: int) -> None:
        saved = self.saved.saved_read
        self.saved.update(model, read)
        if self.saved.saved_read != saved:  # just saved: pieces.json covers the same segments
            self._write_pieces()

    def stop(self) -> None:
        self.saved.save_latest()
        if self.saved.saved_read > self.start:
            self._write_pieces()

    def finish(self) -> tuple[float, float, list[dict]]:
        """Seconds and peak RSS MB over all pieces, and the pieces."""
        pieces = self.earlier + [self._piece()]
        self.saved.clear()
        self.pieces_path.unlink(missing_ok=True)
        return sum(p["seconds"] for p in pieces), max(p["peak_mb"] for p in pieces), pieces

    def _piece(self) -> dict:
        return {"first_segment": self.start, "segments": self.saved.saved_read - self.start,
                "seconds": time.perf_counter() - self.began, "peak_mb": peak_rss_mb(),
                "cpu": self.cpu}

    def _write_pieces(self) -> None:
        write_text_atomic(self.pieces_path, json.dumps(self.earlier + [self._piece()], indent=1))


def pieces_note(pieces: list[dict]) -> dict:
    """For a read done in several pieces: how many, and the CPU kinds if they differ."""
    if len(pieces) < 2:
        return {}
    kinds = list(dict.fromkeys(p["cpu"] for p in pieces if "cpu" in p))
    return {"pieces": len(pieces), **({"cpus": kinds} if len(kinds) > 1 else {})}


def pieces_text(r: dict) -> str:
    if "pieces" not in r:
        return ""
    return f"  (read in {r['pieces']} pieces" + (f" on {', '.join(r['cpus'])})" if "cpus" in r else ")")


def measure(arch: str, length: int, dtype: str = "float32", threads: int | None = None,
            progress: bool = True) -> dict:
    """`worker` in a fresh interpreter: its own peak RSS, nothing left over from earlier runs."""
    cmd = [sys.executable, str(Path(__file__).resolve()), arch, str(length),
           "--dtype", dtype] + (["--threads", str(threads)] if threads else [])
    cmd += [] if progress else ["--no-progress"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as child:  # stderr: progress
        try:
            stdout, _ = child.communicate()
        except SystemExit:  # SIGTERM: passed on, so the child saves a long read before it exits
            child.terminate()
            child.wait()
            raise
    lines = [x for x in stdout.splitlines() if x.startswith("{")]
    if child.returncode or not lines:
        return {"arch": arch, "length": length, "skipped": f"failed (exit {child.returncode})"}
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("arch", choices=("backbone", "rmt", "rmt_r", "armt"))
    parser.add_argument("length", type=int, help="tokens to read")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's, the cores)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    # SIGTERM as an exception: the read in progress is saved before the process exits
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    print(json.dumps(worker(args.arch, args.length, args.dtype, not args.no_progress)), flush=True)


if __name__ == "__main__":
    main()
