"""The README's accuracy-versus-length plot for the trained CPU models on held-out qa1.

    python experiments/qa1_vs_length.py --samples 100           # resumable; re-run to continue
    python experiments/qa1_vs_length.py --samples 100 --table-only

Question: does a memory model trained on short inputs keep answering at lengths past its
training, where its own backbone fine-tuned on the same data with full attention does not?
Rows, on one qa1 test suite of N segments of the memory model's SmolLM2 tokens (N = 1 ... 64),
context and question together, as in training ("512" is 4 segments: 496 context tokens and
the question):

  - the RMT from `babilab train recipes/cpu_smollm2_rmt.yaml`    (rmt:out/cpu_smollm2_rmt/model)
  - the no-memory fine-tune, recipes/cpu_smollm2_plain.yaml     (hf:out/cpu_smollm2_plain/model,
    the bare prompt it was trained on)
  - SmolLM2-135M-Instruct zero-shot (BABILong's full prompt and chat template) and with RAG
    (sentence chunks, top 5, in document order: the best RAG row of rag_table.md on qa1)
  - the two heuristics (heuristic:last-place, heuristic:actor-places) as reference lines.

Test stories and test books only (the trainer never reads them). Everything goes through the
run store, so an interrupted run resumes and finished cells cost nothing. Writes
experiments/results/qa1_vs_length.md and .png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see rag_table.py

from babilab.backbone import packaged_file
from babilab.prompts import PromptConfig
from babilab.report.plots import lines_png
from babilab.runs import evaluate, score_run
from babilab.suite import GenerateConfig, generate_suite

RESULTS = Path(__file__).parent / "results"
QUESTION_RESERVE = 16  # tokens left for the question, so that it ends the last segment
BARE = PromptConfig(instruction=False, examples=False, post_prompt=False, chat_template=False)


def rows(rmt: Path, plain: Path) -> list[tuple[str, str, dict, list[PromptConfig] | None]]:
    """(row name, model spec, model options, prompt configs), cheapest first."""
    return [
        ("heuristic: last place mentioned", "heuristic:last-place", {}, None),
        ("heuristic: a place the actor visited", "heuristic:actor-places", {}, None),
        ("RMT (SmolLM2, trained)", f"rmt:{rmt}", {}, None),
        ("SmolLM2 fine-tuned, no memory", f"hf:{plain}", {}, [BARE]),
        ("SmolLM2 zero-shot", "hf:smollm2", {}, None),
        ("SmolLM2 + RAG (sentences, doc order)", "rag:hf:smollm2", {"order": "doc"}, None),
    ]


def suite_config(samples: int, segments: list[int], segment_size: int) -> GenerateConfig:
    return GenerateConfig(tasks="qa1", lengths=",".join(str(n * segment_size) for n in segments),
                          samples=samples, tokenizer=str(packaged_file("smollm2")),
                          reserve_tokens=QUESTION_RESERVE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=100, help="questions per length")
    parser.add_argument("--segments", default="1,2,4,8,16,32,64", help="context lengths in segments")
    parser.add_argument("--segment-size", type=int, default=128)
    parser.add_argument("--rmt", type=Path, default=Path("out/cpu_smollm2_rmt/model"))
    parser.add_argument("--plain", type=Path, default=Path("out/cpu_smollm2_plain/model"))
    parser.add_argument("--run", type=Path, default=Path("out/qa1_vs_length"))
    parser.add_argument("--table-only", action="store_true", help="render stored predictions only")
    args = parser.parse_args(argv)
    segments = [int(n) for n in args.segments.split(",")]
    suite = generate_suite(suite_config(args.samples, segments, args.segment_size))
    print(f"suite {suite.path}", flush=True)
    labels = {}
    for name, spec, options, configs in [] if args.table_only else rows(args.rmt, args.plain):
        folder = {"rmt": args.rmt, "hf": args.plain}.get(spec.split(":")[0])
        if folder is not None and spec.endswith(str(folder)) and not folder.is_dir():
            print(f"{name}: skipped, {folder} does not exist (train it first)", flush=True)
            continue
        began = time.perf_counter()
        summary = evaluate(suite, spec, args.run, configs=configs, batch_size=4, progress=True,
                           **options)
        labels[name] = summary.model
        print(f"{name} [{summary.model}]: {summary.new} new, {summary.skipped} stored, "
              f"{summary.failed} failed, {time.perf_counter() - began:.0f} s", flush=True)
    write(score_run(args.run), labels or stored_labels(args.run, args.rmt, args.plain), segments, args)
    return 0


def stored_labels(run_dir: Path, rmt: Path, plain: Path) -> dict[str, str]:
    """Row name -> model label, from the specs the run folder recorded (no model loaded)."""
    name_of = {spec: name for name, spec, _, _ in rows(rmt, plain)}
    models = json.loads((run_dir / "run.json").read_text())["models"]
    found = {name_of[m["spec"]]: label for label, m in models.items() if m["spec"] in name_of}
    return {name: found[name] for name in name_of.values() if name in found}


def cell(c: dict | None, flags: dict, samples: int) -> str:
    if c is None:
        return "-"
    if flags.get("over_window", 0) == c["n"]:
        return "over window"
    return f"{c['accuracy']:.0f}" + (f" (n={c['n']})" if c["n"] < samples else "")


def write(summary: dict, labels: dict[str, str], segments: list[int], args) -> None:
    lengths = [str(n * args.segment_size) for n in segments]
    series: dict[str, list[float | None]] = {}
    lines = [
        "# qa1 accuracy versus length: memory vs attention, trained on 1-4 segments",
        "",
        f"Produced by `python experiments/qa1_vs_length.py --samples {args.samples}` "
        f"({platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"{time.strftime('%Y-%m-%d')}). Accuracy in % (BABILong metric) on held-out qa1 (test "
        f"stories, test books); context and question = N segments of {args.segment_size} SmolLM2 "
        f"tokens; "
        f"{args.samples} questions per length. Both models ran the curriculum of 1, 2 and 4 "
        f"segments (see results/train/ for what each stage did).",
        "",
        "| | " + " | ".join(f"{n} seg ({n * args.segment_size})" for n in segments) + " |",
        "|---|" + "---|" * len(segments),
    ]
    for name, label in labels.items():
        cells = summary["models"].get(label, {}).get("cells", {})
        found = [cells.get(f"qa1/{n}") for n in lengths]
        flags = summary["models"].get(label, {}).get("flags", {})
        series[name] = [c["accuracy"] if c else None for c in found]
        lines.append(f"| {name} | " + " | ".join(cell(c, flags.get(f"qa1/{n}", {}), args.samples)
                                                   for c, n in zip(found, lengths, strict=True))
                     + " |")
    (RESULTS / "qa1_vs_length.md").write_text("\n".join(lines) + "\n")
    png = lines_png(series, [str(n) for n in segments], "qa1, held out",
                    f"context segments ({args.segment_size} tokens each)")
    (RESULTS / "qa1_vs_length.png").write_bytes(png)
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
