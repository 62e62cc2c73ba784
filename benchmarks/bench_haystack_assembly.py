"""How much faster is babilab's haystack assembly than BABILong's way, at 1M and 10M tokens?

Both sides build one qa1 sample of nominal length L (context = L - 300 GPT-2 tokens) from the
same corpus (gutenberg, all 11 books) with the same tokenizer (gpt2), and end with the context
as one string:

- babilab: `assemble` on the prepared background (sentences split and tokenised once, cached
  as arrays), then `Context.text()`; "babilab-stream" consumes `Context.iter_token_ids()`
  instead (never holding the whole context). The one-time preparation is timed separately.
  The ratio column is reference time / babilab text() time.
- reference: a faithful re-implementation of BABILong's `SentenceSampler` +
  `NoiseInjectionDataset` (booydar/babilong babilong/babilong_utils.py, with the leading space
  of commit 51b9f7d): per sample, pick a random book and a random character offset, keep
  sample_size * 10 characters, sentence-split, drop the first and last sentence, tokenise every
  sentence with one tokenizer call each (transformers fast tokenizer), drop those under 10
  tokens, cut the last one at token level, draw slots with `choice`, flatten and decode.
  Stand-in: babilab's regex sentence splitter replaces NLTK Punkt (no NLTK data offline); Punkt
  is slower, so this favours the reference.
- reference, batched: the same, but each slice's sentences tokenised in one batched call: a
  generous baseline, faster than what BABILong does.

Each case runs in its own subprocess, so its peak RSS (ru_maxrss) is its own.

    python benchmarks/bench_haystack_assembly.py [--lengths 1M,10M] [--out results.txt]

`--whole` answers the question as a user meets it instead: whole processes, start-up,
tokenizer, corpus, assembly and writing included, on the test-split books of each corpus in
`--corpora` (default gutenberg and every offline corpus together):

- babilab: `babilab generate --tasks qa1 --samples N --lengths L --out NEW` (JSONL + Parquet),
  warm (the prepared background cached, as on every run after the first) and cold (its
  preparation included: a fresh haystack cache; corpora and tokenizer files already fetched);
- reference: one `python` process that loads the transformers tokenizer and the same books,
  builds the same N samples with BABILong's sampler (one sampler for all samples, as its
  NoiseInjectionDataset does) and writes them as JSONL.

babilab's modules are compiled to bytecode first, as an installed package has them (a
checkout under PYTHONDONTWRITEBYTECODE=1 would recompile them at every start).

Cases: 1 x 1M, 1 x 10M and 100 x 32k (`--cases 1x1M,1x10M,100x32k`). The ratio is reference
seconds / babilab seconds. Each case also gets an `import floor` row: a process that only
imports the libraries `generate` cannot do without (numpy for the assembly, pyarrow for the
Parquet file, pydantic for the suite's config, tiktoken for the tokenizer) and exits. Its
ratio is the most any `generate` built on them could reach.

    python benchmarks/bench_haystack_assembly.py --whole [--reps 3] [--out results.txt]
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
import time
from importlib import metadata
from pathlib import Path

import numpy as np

RESERVE = 300
SEED = 0


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# --- the reference approach ---------------------------------------------------------------------

class ReferenceSampler:
    """BABILong's SentenceSampler with shuffle=True (random book, random offset)."""

    def __init__(self, books: list[str], tokenizer, batched: bool, rng: np.random.Generator):
        from babilab.haystack import split_sentences

        self.books, self.tok, self.batched, self.gen = books, tokenizer, batched, rng
        self.split = split_sentences
        self.sentences: list[str] = []
        self.min_sentence_len = 10

    def _tokenized(self, sentences: list[str]):
        """Each sentence's ids, lazily as the reference does (batched: 1024 at a time)."""
        if not self.batched:
            for s in sentences:
                yield self.tok.encode(" " + s, add_special_tokens=False)
            return
        for b in range(0, len(sentences), 1024):
            texts = [" " + s for s in sentences[b:b + 1024]]
            yield from self.tok(texts, add_special_tokens=False)["input_ids"]

    def get_sample(self, sample_size: int) -> list[list[int]]:
        sample: list[list[int]] = []
        total_len = 0
        while True:
            sentences = list(self.sentences)
            for i, tokenized in enumerate(self._tokenized(sentences)):
                if len(tokenized) < self.min_sentence_len:
                    continue
                total_len += len(tokenized)
                sample.append(tokenized)
                if total_len >= sample_size:
                    self.sentences = self.sentences[i + 1:]
                    cutoff = total_len - sample_size
                    if cutoff > 0:
                        sample[-1] = sample[-1][:-cutoff]
                    return sample
            self.sentences = []
            self._sample_sentences(sample_size)

    def _sample_sentences(self, sample_size: int) -> None:
        sentences: list[str] = []
        while len(sentences) == 0:
            text = self.books[int(self.gen.choice(len(self.books)))]
            text = text[self.gen.choice(len(text)):]
            text = text[:sample_size * 10]
            sentences = self.split(text, keep_newlines=True)[1:-1]
        self.sentences += sentences


def reference_assemble(qa, length: int, books: list[str], tokenizer, batched: bool,
                       sampler: ReferenceSampler | None = None) -> str:
    """BABILong's NoiseInjectionDataset.__getitem__ for one sample, ending in a string."""
    if sampler is None:
        sampler = ReferenceSampler(books, tokenizer, batched, np.random.default_rng(SEED))
    gen = sampler.gen
    facts_tok = [tokenizer.encode(" " + f, add_special_tokens=False) for f in qa.facts]
    sample_size = length - RESERVE
    background = sampler.get_sample(sample_size - sum(len(f) for f in facts_tok))
    positions = np.sort(gen.choice(range(len(background) + 1), len(facts_tok)))
    slots: list[list[list[int]]] = [[] for _ in range(len(background) + 1)]
    for fact, pos in zip(facts_tok, positions, strict=True):
        slots[pos].append(fact)
    for i, s in enumerate(background):
        slots[i].append(s)
    tokens = [t for slot in slots for s in slot for t in s]
    return tokenizer.decode(tokens).strip()


# --- one case per subprocess ---------------------------------------------------------------------

def run_case(case: str, length: int, reps: int, cache_dir: str) -> dict:
    from babilab.babi import take_qas
    from babilab.haystack import assemble, load_tokenizer, open_corpus, prepare_background

    qa = take_qas("qa1", "test", 1, seed=0)[0]
    tok = load_tokenizer("gpt2")
    corpus = open_corpus("gutenberg", split="all")
    out: dict = {"case": case, "length": length}
    if case == "prepare":
        t0 = time.perf_counter()
        bg = prepare_background(corpus, tok, cache_dir=cache_dir)
        out.update(seconds=[time.perf_counter() - t0], n_tokens=bg.n_tokens,
                   n_sentences=bg.n_sentences, n_books=bg.meta["n_books"],
                   detail={k: bg.meta[k] for k in ("split_s", "tokenize_s", "check_s")})
    elif case in ("babilab", "babilab-stream"):
        bg = prepare_background(corpus, tok, cache_dir=cache_dir)
        times, plan_times = [], []
        out["rss_before_mb"] = _rss_mb()
        for r in range(reps):
            t0 = time.perf_counter()
            ctx = assemble(qa, length, np.random.default_rng([SEED, r]), bg)
            t1 = time.perf_counter()
            if case == "babilab":  # the whole context as one string
                assert len(ctx.text()) == ctx.n_chars
            else:  # streamed as token-id chunks of at most 2**20, never held whole
                assert sum(len(c) for c in ctx.iter_token_ids()) == ctx.n_tokens
            t2 = time.perf_counter()
            plan_times.append(t1 - t0)
            times.append(t2 - t0)
            assert ctx.n_tokens == length - RESERVE
            del ctx
        out.update(seconds=times, plan_seconds=plan_times)
    else:
        from transformers import PreTrainedTokenizerFast

        from babilab.haystack.tokenizer import ensure_gpt2_files

        hf = PreTrainedTokenizerFast(tokenizer_file=str(ensure_gpt2_files() / "tokenizer.json"))
        books = [d.text for d in corpus.documents()]
        out["rss_before_mb"] = _rss_mb()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            text = reference_assemble(qa, length, books, hf, batched=case == "reference-batched")
            times.append(time.perf_counter() - t0)
            del text
        out["seconds"] = times
    out["peak_rss_mb"] = _peak_mb()
    return out


def _subprocess(case: str, length: int, reps: int, cache_dir: str) -> dict:
    cmd = [sys.executable, __file__, "--case", case, "--length", str(length), "--reps",
           str(reps), "--cache-dir", cache_dir]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{case} {length} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- whole processes ----------------------------------------------------------------------------

def reference_process(corpus: str, length: int, samples: int, out: str) -> None:
    """The reference generator as one process: imports, tokenizer, books, samples, JSONL."""
    from transformers import PreTrainedTokenizerFast

    from babilab.babi import take_qas
    from babilab.haystack import open_corpus
    from babilab.haystack.tokenizer import ensure_gpt2_files

    hf = PreTrainedTokenizerFast(tokenizer_file=str(ensure_gpt2_files() / "tokenizer.json"))
    books = [d.text for d in open_corpus(corpus, split="test").documents()]
    sampler = ReferenceSampler(books, hf, False, np.random.default_rng(SEED))
    with open(out, "w", encoding="utf-8") as f:
        for qa in take_qas("qa1", "test", samples, seed=SEED):
            text = reference_assemble(qa, length, books, hf, batched=False, sampler=sampler)
            f.write(json.dumps({"input": text, "question": qa.question, "target": qa.answer},
                               ensure_ascii=False) + "\n")


def _timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return seconds


def _cache_env(root: Path, user_cache: Path) -> dict[str, str]:
    """An XDG cache with the user's fetched corpora and tokenizer files but no prepared
    backgrounds: the next `generate` prepares its background (cold), later ones reuse it."""
    cache = root / "babilab"
    cache.mkdir(parents=True)
    for name in ("corpora", "tokenizers", "downloads"):
        if (user_cache / name).is_dir():
            (cache / name).symlink_to(user_cache / name)
    return {**os.environ, "XDG_CACHE_HOME": str(root)}


def _compile_babilab() -> None:
    """Compile babilab's modules to bytecode (__pycache__, ignored by git), as an installed
    package has them: a checkout run with PYTHONDONTWRITEBYTECODE=1 never writes them and
    would recompile them at every start (about 0.1 s, in babilab and in the reference)."""
    import babilab

    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(babilab.__file__).parent)],
                   check=True)


# the libraries every `generate` loads, as it loads them
FLOOR_IMPORTS = "import numpy, pyarrow.parquet, tiktoken; from pydantic import BaseModel"


def whole_processes(corpora: list[str], cases: list[tuple[int, int]], reps: int,
                    emit) -> None:
    from babilab.cache import cache_root
    from babilab.haystack import prepare_background

    babilab_bin = str(Path(sys.executable).with_name("babilab"))
    user_cache = cache_root()
    _compile_babilab()
    emit(f"{'corpus':<42}{'case':>10} {'approach':<20}{'seconds':>9}{'ratio':>8}")
    for corpus in corpora:
        bg = prepare_background(corpus, "gpt2", split="test")  # fetch once, outside the timings
        emit(f"# {corpus}: test split {bg.meta['n_books']} books, {bg.n_tokens:,} gpt2 tokens")
        for samples, length in cases:
            case = f"{samples}x{_length_name(length)}"
            with tempfile.TemporaryDirectory(prefix="bench-whole-") as tmp:
                root = Path(tmp)
                env = _cache_env(root / "xdg", user_cache)
                cmd = [babilab_bin, "generate", "--tasks", "qa1", "--samples", str(samples),
                       "--lengths", _length_name(length), "--corpus", corpus]
                cold = _timed([*cmd, "--out", str(root / "cold")], env)
                warm = float(np.median([_timed([*cmd, "--out", str(root / f"warm{r}")], env)
                                        for r in range(reps)]))
                floor = float(np.median([_timed([sys.executable, "-c", FLOOR_IMPORTS], env)
                                         for _ in range(reps)]))
                ref = _timed([sys.executable, __file__, "--case", "reference-process",
                              "--length", str(length), "--samples", str(samples),
                              "--corpus", corpus, "--ref-out", str(root / "ref.jsonl")],
                             os.environ.copy())
            emit(f"{corpus:<42}{case:>10} {'babilab warm':<20}{warm:>9.2f}{ref / warm:>7.1f}x")
            emit(f"{corpus:<42}{case:>10} {'babilab cold':<20}{cold:>9.2f}{ref / cold:>7.1f}x")
            emit(f"{corpus:<42}{case:>10} {'reference':<20}{ref:>9.2f}")
            emit(f"{corpus:<42}{case:>10} {'import floor':<20}{floor:>9.2f}{ref / floor:>7.1f}x")


def _length_name(tokens: int) -> str:
    if tokens % 1_000_000 == 0:
        return f"{tokens // 1_000_000}M"
    return f"{tokens // 1000}k" if tokens % 1000 == 0 else str(tokens)


def _versions() -> str:
    names = ["numpy", "tokenizers", "transformers", "tiktoken"]
    return ", ".join(f"{n} {metadata.version(n)}" for n in names)


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _parse_length(s: str) -> int:
    s = s.strip().upper()
    mult = {"K": 1_000, "M": 1_000_000}.get(s[-1], 1)
    return int(float(s[:-1] if s[-1] in "KM" else s) * mult)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="1M,10M")
    parser.add_argument("--reps", type=int, default=5, help="babilab repetitions per length")
    parser.add_argument("--reference-reps", type=int, default=1)
    parser.add_argument("--out", help="also write the report to this file")
    parser.add_argument("--whole", action="store_true",
                        help="time whole `babilab generate` processes against the reference")
    parser.add_argument("--corpora", default="gutenberg,gutenberg+austen+sotu+bible+shakespeare",
                        help="--whole: corpora to run on, comma-separated")
    parser.add_argument("--cases", default="1x1M,1x10M,100x32k",
                        help="--whole: SAMPLESxLENGTH, comma-separated")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--length", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--samples", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", help=argparse.SUPPRESS)
    parser.add_argument("--ref-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case == "reference-process":  # the reference generator's own whole process
        reference_process(args.corpus, args.length, args.samples, args.ref_out)
        return
    if args.case:  # inside the per-case subprocess
        print(json.dumps(run_case(args.case, args.length or 0, args.reps, args.cache_dir)))
        return

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    lines = [
        "# bench_haystack_assembly: one qa1 sample, context = L - 300 gpt2 tokens, gutenberg "
        "(all 11 books)",
        f"# {_cpu()}, {os.cpu_count()} cpus, {mem:.0f} GiB RAM; python "
        f"{platform.python_version()}; {_versions()}; load average at start "
        f"{os.getloadavg()[0]:.1f} (a shared machine: absolute times vary, ratios less)",
        "# times: median over repetitions (babilab) or single runs (reference); peak = the "
        "case's process peak RSS,",
        "# which includes the interpreter, the tokenizer and the corpus (rss before = "
        "before the first sample)",
    ]

    def emit(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    if args.whole:
        lines[0] = ("# bench_haystack_assembly --whole: `babilab generate` as whole processes vs "
                    "the reference generator, qa1, gpt2, test-split books")
        lines[2] = "# times: babilab warm = median over --reps runs, cold and reference = one run"
        del lines[3]
    for line in lines:
        print(line, flush=True)
    if args.whole:
        cases = [(int(n), _parse_length(length)) for n, length in
                 (c.split("x") for c in args.cases.split(","))]
        whole_processes(args.corpora.split(","), cases, args.reps, emit)
        if args.out:
            with open(args.out, "w") as f:
                f.write("\n".join(lines) + "\n")
        return
    with tempfile.TemporaryDirectory(prefix="bench-haystack-") as cache:
        prep = _subprocess("prepare", 0, 1, cache)
        emit(f"one-time preparation: {prep['seconds'][0]:.2f} s for {prep['n_books']} books, "
             f"{prep['n_sentences']} sentences, {prep['n_tokens']} tokens "
             f"(split {prep['detail']['split_s']:.2f} s, tokenize "
             f"{prep['detail']['tokenize_s']:.2f} s, additivity check "
             f"{prep['detail']['check_s']:.2f} s); peak RSS {prep['peak_rss_mb']:.0f} MB")
        emit(f"{'length':>8} {'approach':<20}{'seconds':>10}{'rss before MB':>15}"
             f"{'peak RSS MB':>13}{'ratio':>9}")
        for length in [_parse_length(x) for x in args.lengths.split(",")]:
            ours_s = 0.0
            for case, what in (("babilab", "text()"), ("babilab-stream", "iter_token_ids()")):
                ours = _subprocess(case, length, args.reps, cache)
                seconds = float(np.median(ours["seconds"]))
                plan_s = float(np.median(ours["plan_seconds"]))
                ours_s = ours_s or seconds  # ratios are against the text() case
                emit(f"{length:>8} {case:<20}{seconds:>10.4f}{ours['rss_before_mb']:>15.0f}"
                     f"{ours['peak_rss_mb']:>13.0f}{'':>9}   (assemble {plan_s:.4f} s + {what})")
            for case in ("reference-batched", "reference"):
                ref = _subprocess(case, length, args.reference_reps, cache)
                ref_s = float(np.median(ref["seconds"]))
                emit(f"{length:>8} {case:<20}{ref_s:>10.2f}{ref['rss_before_mb']:>15.0f}"
                     f"{ref['peak_rss_mb']:>13.0f}{ref_s / ours_s:>8.0f}x")
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
