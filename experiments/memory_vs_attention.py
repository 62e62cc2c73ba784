"""Memory vs attention at length: the trained memory model beside its backbone with full
attention (fine-tuned on the same data, and zero-shot), RAG and the qa1 heuristics, on
held-out BABILong at the standard lengths.

    python experiments/memory_vs_attention.py                      # qa1, 50 per length, 1M x 5
    python experiments/memory_vs_attention.py --task qa2 --memory models/qa2-memory
    python experiments/memory_vs_attention.py --lengths 0k,1k,4k --samples 10   # a quick look
    python experiments/memory_vs_attention.py --table-only         # render what is stored

Rows (each skipped with a note when its model is not there):
  - the memory model (`memory:models/qa1-memory`, the campaign's shipped parts)
  - SmolLM2 fine-tuned without memory on the same samples (`--plain`: a transformers folder
    from the campaign's baseline, evaluated with the bare prompt it was trained on)
  - SmolLM2-135M-Instruct zero-shot (BABILong's prompt and chat template), and with RAG
    (sentences, top 5, document order: its best configuration on qa1, rag_table.md)
  - for qa1, the heuristics "last place mentioned" and "a place the actor visited".

Suites: test stories and test books (training never reads them), lengths in GPT-2 tokens as
BABILong's, `--samples` questions per length up to 128k and `--samples-1m` at 1M. Every
prediction goes through the run store, so an interrupted run resumes (the memory answerer
also saves a long read's state) and finished cells cost nothing. Writes
experiments/results/memory_vs_attention_<task>.md (accuracy with 95% intervals) and .png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from babilab.prompts import PromptConfig
from babilab.report.plots import lines_png
from babilab.runs import evaluate, score_run
from babilab.suite import GenerateConfig, generate_suite

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
BARE = PromptConfig(instruction=False, examples=False, post_prompt=False, chat_template=False)
LONG = "1M"  # the length evaluated with fewer samples


def rows(task: str, memory: Path, plain: Path) -> list[tuple[str, str, dict, list | None, Path | None]]:
    """(row name, model spec, answerer options, prompt configs, folder it needs), cheapest first."""
    out = []
    if task == "qa1":
        out += [("heuristic: last place mentioned", "heuristic:last-place", {}, None, None),
                ("heuristic: a place the actor visited", "heuristic:actor-places", {}, None, None)]
    out += [
        ("memory model (ARMT, SmolLM2, trained)", f"memory:{memory}", {}, None, memory),
        ("SmolLM2 fine-tuned, no memory", f"hf:{plain}", {}, [BARE], plain),
        ("SmolLM2 zero-shot", "hf:smollm2", {}, None, None),
        ("SmolLM2 + RAG (sentences, doc order)", "rag:hf:smollm2", {"order": "doc"}, None, None),
    ]
    return out


def suites(task: str, lengths: list[str], samples: int, samples_long: int):
    """One suite for the lengths up to 128k and one for 1M (fewer samples)."""
    short = [n for n in lengths if n != LONG]
    out = []
    if short:
        out.append(generate_suite(GenerateConfig(tasks=task, lengths=",".join(short),
                                                 samples=samples)))
    if LONG in lengths:
        out.append(generate_suite(GenerateConfig(tasks=task, lengths=LONG, samples=samples_long)))
    return out


def cell(c: dict | None, flags: dict) -> str:
    if c is None:
        return "-"
    if flags.get("over_window", 0) == c["n"]:
        return "over window"
    return f"{c['accuracy']:.0f} [{c['ci_low']:.0f}-{c['ci_high']:.0f}] (n={c['n']})"


def write(summary: dict, labels: dict[str, str], lengths: list[str], args) -> None:
    series: dict[str, list[float | None]] = {}
    lines = [
        f"# Memory vs attention at length: {args.task}",
        "",
        f"Produced by `python experiments/memory_vs_attention.py --task {args.task} --samples "
        f"{args.samples} --samples-1m {args.samples_1m}` ({platform.processor() or platform.machine()}"
        f", {os.cpu_count()} CPU cores, {time.strftime('%Y-%m-%d')}). Accuracy in % (BABILong "
        f"metric) on held-out {args.task} (test stories, test books), lengths in GPT-2 tokens; "
        "[95% Wilson interval] and the number of questions in each cell.",
        "",
        "| | " + " | ".join(lengths) + " |",
        "|---|" + "---|" * len(lengths),
    ]
    for name, label in labels.items():
        model = summary["models"].get(label, {})
        found = [model.get("cells", {}).get(f"{args.task}/{n}") for n in lengths]
        flags = model.get("flags", {})
        series[name] = [c["accuracy"] if c and flags.get(f"{args.task}/{n}", {}).get(
            "over_window", 0) < c["n"] else None for c, n in zip(found, lengths, strict=True)]
        lines.append(f"| {name} | " + " | ".join(
            cell(c, flags.get(f"{args.task}/{n}", {})) for c, n in zip(found, lengths, strict=True))
            + " |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"memory_vs_attention_{args.task}"
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    stem.with_suffix(".png").write_bytes(
        lines_png(series, lengths, f"{args.task}, held out", "context length (GPT-2 tokens)"))
    print("\n".join(lines))


def stored_labels(run_dir: Path, table: list) -> dict[str, str]:
    """Row name -> model label, from the specs the run folder recorded (no model loaded)."""
    name_of = {spec: name for name, spec, *_ in table}
    models = json.loads((run_dir / "run.json").read_text())["models"]
    found = {name_of[m["spec"]]: label for label, m in models.items() if m["spec"] in name_of}
    return {name: found[name] for name in name_of.values() if name in found}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", default="qa1")
    p.add_argument("--lengths", default="0k,1k,2k,4k,8k,16k,32k,128k,1M")
    p.add_argument("--samples", type=int, default=50, help="questions per length up to 128k")
    p.add_argument("--samples-1m", type=int, default=5, help="questions at 1M")
    p.add_argument("--memory", type=Path, default=ROOT / "models" / "qa1-memory")
    p.add_argument("--plain", type=Path, default=ROOT / "out" / "qa1_plain" / "model")
    p.add_argument("--run", type=Path, default=ROOT / "out" / "memory_vs_attention")
    p.add_argument("--only", help="evaluate only the rows whose name contains this")
    p.add_argument("--table-only", action="store_true", help="render stored predictions only")
    args = p.parse_args(argv)
    if min(args.samples, args.samples_1m) < 1:
        p.error("--samples and --samples-1m must be at least 1")
    lengths = args.lengths.split(",")
    run_dir = args.run / args.task
    table = rows(args.task, args.memory, args.plain)
    labels = {}
    for suite in [] if args.table_only else suites(args.task, lengths, args.samples,
                                                   args.samples_1m):
        print(f"suite {suite.path}", flush=True)
        for name, spec, options, configs, folder in table:
            if args.only and args.only not in name:
                continue
            if folder is not None and not folder.is_dir():
                print(f"{name}: skipped, {folder} does not exist", flush=True)
                continue
            began = time.perf_counter()
            summary = evaluate(suite, spec, run_dir, configs=configs, batch_size=4,
                               progress=True, **options)
            labels[name] = summary.model
            print(f"{name} [{summary.model}]: {summary.new} new, {summary.skipped} stored, "
                  f"{summary.failed} failed, {time.perf_counter() - began:.0f} s", flush=True)
    if not (run_dir / "run.json").exists():
        print(f"nothing stored in {run_dir} yet")
        return 1
    write(score_run(run_dir), stored_labels(run_dir, table) | labels, lengths, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
