"""How fast is RAG retrieval over a 1M-token haystack here, and is its memory bounded at 10M?

For one generated qa1 sample of nominal length L (gutenberg background, gpt2 tokens) and
each chunker (sentences; 512-token chunks of the embedder's tokenizer), each case in its own
subprocess (so its peaks are its own) with an empty embedding cache:

- chunk: split the context into chunks (character spans);
- embed: all-MiniLM-L6-v2 over every chunk, in batches appended to the .npy cache file
  (throughput in chunks/s, i.e. sentences/s for the sentence chunker, and tokens/s, over the
  whole first read: chunking again, embedding and writing);
- search: per question (the sample's own plus 19 other qa1 questions), top-5 over the
  memory-mapped vectors: `flat` (exact, block by block, nothing built), `hnsw` and `ivf`
  (index built once from the same batches, then searched); median latency per question,
  query encoding excluded; the ratio is flat latency / index latency;
- second reader: opening the cached chunk spans and vectors (what a second reader pays).

Memory: "peak RSS" is the kernel's high-water mark, which also counts pages of the
memory-mapped cache file (the kernel can drop those at any time); "peak anon" samples the
process's own memory (RssAnon) every 50 ms, which is what must stay bounded.

`--memory-lengths` runs the same path with a stand-in embedder (seeded random unit vectors
instead of the model): it checks chunking, streaming to the cache, search and memory at
10M tokens in minutes, where the real model needs hours on 2 cores. Its timings are not
embedding throughput, and its recall is meaningless (printed as -).

    nice python benchmarks/bench_rag_retrieval.py                 # 1M real, 10M memory path
    nice python benchmarks/bench_rag_retrieval.py --lengths 8k --memory-lengths ""   # quick check
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path

# Before torch loads: OpenMP threads that sleep instead of spinning (see rag_table.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

OUT = Path(__file__).parent / "results" / "bench_rag_retrieval.txt"
QUERIES = 20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class AnonPeak:
    """The highest RssAnon seen, sampled every 50 ms in a thread."""

    def __init__(self):
        self.peak = 0.0
        threading.Thread(target=self._run, daemon=True).start()

    @staticmethod
    def now() -> float:
        with open("/proc/self/status") as f:
            return next(int(x.split()[1]) for x in f if x.startswith("RssAnon")) / 1024

    def _run(self) -> None:
        while True:
            self.peak = max(self.peak, self.now())
            time.sleep(0.05)


def worker(length: str, chunk: str, stand_in: bool) -> dict:
    """One (length, chunker) case in a fresh process with an empty cache."""
    import numpy as np

    from babilab.babi import take_qas
    from babilab.models import rag_index
    from babilab.models.rag import recall_of
    from babilab.runs.evaluate import request_of
    from babilab.suite import GenerateConfig, generate_suite

    anon = AnonPeak()
    suite = generate_suite(GenerateConfig(tasks="qa1", lengths=length, samples=1))
    sample = next(iter(suite.samples("qa1", length)))
    context = sample.input
    embedder = rag_index.Embedder.load(None)
    chunker = rag_index.Chunker.parse(chunk)
    questions = [sample.question] + [qa.question for qa in take_qas("qa1", "test", QUERIES + 20, seed=7)
                                     if qa.question != sample.question][:QUERIES - 1]
    queries = [embedder.encode([q]) for q in questions]  # also warms the model up
    began = time.perf_counter()
    for q in questions:
        embedder.encode([q])
    encode_query_s = (time.perf_counter() - began) / len(questions)
    if stand_in:
        rng = np.random.default_rng(0)

        def random_unit(texts: list[str], seq_length: int | None = None) -> np.ndarray:
            v = rng.standard_normal((len(texts), embedder.dim)).astype(np.float32)
            return v / np.linalg.norm(v, axis=1, keepdims=True)

        embedder.encode = random_unit
    anon_before = anon.now()

    began = time.perf_counter()
    rag_index.Chunker.split(chunker, context, embedder.tokenizer)  # timed alone
    chunk_s = time.perf_counter() - began
    head = context[:200_000]  # embedder tokens, estimated from the first 200k characters
    n_tokens = len(embedder.tokenizer(head, add_special_tokens=False, truncation=False)["input_ids"]) \
        * len(context) / len(head)
    began = time.perf_counter()
    chunks, vectors = rag_index.chunk_and_embed(embedder, chunker, context, cache=True,
                                                progress=not stand_in)
    embed_s = time.perf_counter() - began  # the first reader chunks again: counted here too
    result = {"length": length, "chunk": chunk, "stand_in": stand_in, "context_chars": len(context),
              "gpt2_tokens": sample.context_tokens, "embedder_tokens_est": int(n_tokens),
              "n_chunks": len(chunks), "chunk_s": chunk_s, "embed_s": embed_s,
              "chunks_per_s": len(chunks) / embed_s, "tokens_per_s": n_tokens / embed_s,
              "encode_query_s": encode_query_s, "anon_before_mb": anon_before,
              "anon_after_embed_mb": anon.peak, "rss_after_embed_mb": peak_mb(), "indexes": {}}
    request = request_of(sample)
    for kind in rag_index.INDEX_KINDS:
        build_s = 0.0
        if kind == "flat":
            def run(q, v=vectors):
                return rag_index.search(v, q, 5, "flat")
        else:
            began = time.perf_counter()
            ann = rag_index.build_index(vectors, kind)
            build_s = time.perf_counter() - began

            def run(q, ann=ann):
                d, i = ann.search(np.ascontiguousarray(q, dtype=np.float32), 5)
                return i[0].tolist(), d[0].tolist()
        latencies, recall = [], 0.0
        for j, q in enumerate(queries):
            began = time.perf_counter()
            ids, _ = run(q)
            latencies.append(time.perf_counter() - began)
            if j == 0:
                recall = recall_of(request, chunks, ids)["recall_fraction"]
        result["indexes"][kind] = {"build_s": build_s, "search_ms": 1000 * float(np.median(latencies)),
                                   "recall": recall, "anon_mb": anon.peak, "rss_mb": peak_mb()}
        ann = None  # free an approximate index before building the next
    began = time.perf_counter()
    again, cached = rag_index.chunk_and_embed(embedder, chunker, context, cache=True, progress=False)
    result["second_reader_s"] = time.perf_counter() - began
    assert cached.shape == vectors.shape and len(again) == len(chunks)
    return result


def versions() -> str:
    names = ["numpy", "torch", "transformers", "sentence-transformers", "faiss-cpu", "tokenizers"]
    found = []
    for n in names:
        try:
            found.append(f"{n} {metadata.version(n)}")
        except metadata.PackageNotFoundError:
            pass
    return ", ".join(found)


def describe(r: dict) -> list[str]:
    what = "stand-in embedder (memory path only)" if r["stand_in"] else "all-MiniLM-L6-v2"
    lines = [
        f"{r['length']} {r['chunk']}, {what}: {r['context_chars']:,} chars, {r['gpt2_tokens']:,} gpt2 "
        f"tokens (~{r['embedder_tokens_est']:,} embedder tokens), {r['n_chunks']:,} chunks",
        f"  chunking {r['chunk_s']:.1f} s; chunking + embedding + writing {r['embed_s']:.0f} s"
        + ("" if r["stand_in"] else f" = {r['chunks_per_s']:.0f} chunks/s, {r['tokens_per_s']:,.0f} tokens/s")
        + f"; query encoding {1000 * r['encode_query_s']:.0f} ms",
        f"  second reader (open the cached spans and vectors) {r['second_reader_s']:.2f} s; anon memory "
        f"{r['anon_before_mb']:.0f} MB before chunking (model + context), "
        f"peak {r['anon_after_embed_mb']:.0f} MB after embedding; peak RSS {r['rss_after_embed_mb']:.0f} MB",
        f"  {'index':<6} {'build s':>9} {'search ms':>10} {'vs flat':>8} {'recall@5':>9} "
        f"{'peak anon MB':>13} {'peak RSS MB':>12}",
    ]
    flat = r["indexes"]["flat"]["search_ms"]
    for kind, x in r["indexes"].items():
        ratio = "" if kind == "flat" else f"{flat / x['search_ms']:.1f}x"
        recall = "-" if r["stand_in"] else f"{x['recall']:.2f}"  # random vectors retrieve nothing
        lines.append(f"  {kind:<6} {x['build_s']:>9.2f} {x['search_ms']:>10.2f} {ratio:>8} "
                     f"{recall:>9} {x['anon_mb']:>13.0f} {x['rss_mb']:>12.0f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", default="1M", help="lengths embedded with the real model")
    parser.add_argument("--memory-lengths", default="10M", help="lengths run with the stand-in embedder")
    parser.add_argument("--chunkers", default="sentence,tokens:512")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--worker", nargs=3, metavar=("LENGTH", "CHUNK", "STAND_IN"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        length, chunk, stand_in = args.worker
        print("RESULT " + json.dumps(worker(length, chunk, stand_in == "1")), flush=True)
        return 0

    load = os.getloadavg()[0]
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    lines = [
        "# bench_rag_retrieval: one qa1 sample, gutenberg background, top-5, empty embedding cache",
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, {mem_gb:.0f} GiB RAM; "
        f"python {platform.python_version()}; {versions()}; load average at start {load:.1f} "
        "(a shared machine: absolute times vary, ratios less); OMP_WAIT_POLICY=PASSIVE",
        "# search: median per question over 20 questions, query encoding excluded; build: the index "
        "built once from the cached vectors; vs flat: exact flat latency / this index's latency",
    ]
    cases = [(n, c, "0") for n in args.lengths.split(",") if n for c in args.chunkers.split(",")]
    cases += [(n, c, "1") for n in args.memory_lengths.split(",") if n for c in args.chunkers.split(",")]
    for length, chunk, stand_in in cases:
        with tempfile.TemporaryDirectory() as cache:  # an empty embedding cache per case
            env = {**os.environ, "BABILAB_RAG_CACHE": cache}
            proc = subprocess.run([sys.executable, __file__, "--worker", length, chunk, stand_in],
                                  capture_output=True, text=True, env=env)
        row = next((json.loads(x[7:]) for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if row is None:
            print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
            return 1
        lines += describe(row)
        print("\n".join(describe(row)), file=sys.stderr, flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
