"""`gpt2` on tiktoken's engine against the same tokenizer.json on tokenizers' engine.

    python benchmarks/bench_gpt2_engine.py --out benchmarks/results/bench_gpt2_engine.txt

Three jobs, each timed for both engines in one run (median of --reps; the ids are checked
equal before anything is timed):
    load      load_tokenizer("gpt2") against HFTokenizer.from_file, in a fresh process each
              (a `babilab generate` pays it once), fingerprints already cached;
    books     encode the gutenberg test split, one call per book (preparing a background);
    joins     the small calls of assembling 100 contexts of 32k tokens: 5 calls of 1-20
              sentences per context (fact encodings, the cut and the join checks).
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import load_text, machine_line  # noqa: E402

LOAD = {
    "tiktoken": "from babilab.haystack.tokenizer import load_tokenizer; load_tokenizer('gpt2')",
    "tokenizers": ("from babilab.haystack.tokenizer import HFTokenizer, ensure_gpt2_files; "
                   "HFTokenizer.from_file(ensure_gpt2_files() / 'tokenizer.json', 'gpt2')"),
}


def load_seconds(code: str) -> float:
    """Seconds of `code` in a fresh interpreter, imports of babilab's haystack excluded."""
    timed = ("import time, babilab.haystack.tokenizer, numpy; t = time.perf_counter(); "
             f"{code}; print(time.perf_counter() - t)")
    done = subprocess.run([sys.executable, "-c", timed], capture_output=True, text=True, check=True)
    return float(done.stdout.strip())


def median_seconds(job, reps: int) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        job()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--out", help="also write the report to this file")
    args = parser.parse_args()

    from babilab.haystack import open_corpus, prepare_background, split_sentences
    from babilab.haystack.tokenizer import HFTokenizer, ensure_gpt2_files, load_tokenizer

    engines = {"tiktoken": load_tokenizer("gpt2"),
               "tokenizers": HFTokenizer.from_file(ensure_gpt2_files() / "tokenizer.json", "gpt2")}
    books = [d.text for d in open_corpus("gutenberg", split="test").documents()]
    prepare_background("gutenberg", engines["tiktoken"], split="test")  # fetched, not timed
    sentences = [" " + s for book in books for s in split_sentences(book)]
    rng = random.Random(0)
    calls = [rng.sample(sentences, rng.randint(1, 20)) for _ in range(500)]
    ids = {name: tok.encode(books) for name, tok in engines.items()}
    assert ids["tiktoken"] == ids["tokenizers"], "the engines disagree on the books"
    assert [engines["tiktoken"].encode(c) for c in calls] == \
        [engines["tokenizers"].encode(c) for c in calls], "the engines disagree on sentences"

    lines = ["# bench_gpt2_engine: gpt2 on tiktoken's engine vs tokenizers' (same tokenizer.json, "
             "same ids)", f"{machine_line()}; {load_text()}",
             f"# books: gutenberg test split, {len(books)} books, {sum(map(len, ids['tiktoken'])):,} "
             f"tokens; joins: {len(calls)} calls of 1-20 sentences; median of {args.reps}",
             f"{'job':<8}{'tiktoken s':>12}{'tokenizers s':>14}{'ratio':>8}"]
    print("\n".join(lines), flush=True)
    jobs = {
        "load": {name: lambda name=name: load_seconds(LOAD[name]) for name in engines},
        "books": {name: lambda tok=tok: tok.encode(books) for name, tok in engines.items()},
        "joins": {name: lambda tok=tok: [tok.encode(c) for c in calls] for name, tok in engines.items()},
    }
    for job, runs in jobs.items():
        if job == "load":
            fast, slow = (statistics.median(run() for _ in range(args.reps)) for run in runs.values())
        else:
            fast, slow = (median_seconds(run, args.reps) for run in runs.values())
        line = f"{job:<8}{fast:>12.4f}{slow:>14.4f}{slow / fast:>7.1f}x"
        lines.append(line)
        print(line, flush=True)
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
