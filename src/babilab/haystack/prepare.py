"""Prepared backgrounds: a corpus split, sentence-split and tokenised once per tokenizer.

Preparing turns every book into sentences, drops those shorter than `min_sentence_tokens`
(BABILong drops sentences under 10 tokens), and lays all kept sentences end to end as one
*stream*, book after book. Each sentence enters the stream with one leading space, as BABILong
tokenises it. The stream is stored as flat arrays (sizes for n sentences, t tokens):

    stream.txt       the stream text, " s0 s1 s2 ...", UTF-8
    char_starts.npy  (n+1,) int64  sentence i is text[char_starts[i]:char_starts[i+1]]
    tok_starts.npy   (n+1,) int64  its tokens are ids[tok_starts[i]:tok_starts[i+1]]
    ids.npy          (t,) uint32   token ids of every sentence, as it tokenises in running text
    book_starts.npy  (b+1,) int64  book k owns sentences book_starts[k]:book_starts[k+1]
    meta.json        book ids, counts, settings, timings, and whether the stream is additive

so assembly is array slicing. The folder is named by a hash of what decides its content (the
corpus *content* hash, the tokenizer fingerprint, the splitter version and the settings), never
by a path or a time, and is published atomically.

*In running text*: a sentence's ids are counted behind an anchor (".") and the anchor's ids
are dropped, so tokenizers that mark the start of a text (SentencePiece's "▁" prefix) count
what they will produce mid-context. For GPT-2 and cl100k this equals encoding " " + sentence.

*Additive*: preparation checks once that encoding long runs of the stream gives exactly the
concatenated sentence ids (windows overlap, so every join, book joins and the wrap-around join
from the last sentence to the first included, is checked). When that holds, any run of stream
sentences has a known exact token count without re-encoding; assembly relies on it and falls
back to encoding the whole context when it does not hold.

Owns this layout and its cache. Does not own where facts go (placement.py, assemble.py).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from ..cache import cache_root, publish_dir
from .corpora import Corpus, open_corpus
from .errors import CorpusError
from .sentences import SPLITTER_VERSION, split_sentences
from .tokenizer import Tokenizer, load_tokenizer

PREP_VERSION = "1"  # bump whenever the same inputs would give different arrays
ANCHOR = "."
_BATCH = 4096  # sentences per encode call: big enough to use the backend's threads
_CHECK_WINDOW = 64  # sentences per additivity window


def encode_in_context(tokenizer: Tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """Ids of each text as it tokenises after other text: encode ANCHOR + text, drop ANCHOR.

    >>> encode_in_context(load_tokenizer("cl100k"), [" Mary went home."])  # doctest: +SKIP
    [[10455, 4024, 2162, 13]]
    """
    # The anchor's own ids come in the same call: assembly calls this hundreds of times per
    # 100 samples, and each tokenizer call has a fixed cost
    anchor, *out = tokenizer.encode([ANCHOR, *(ANCHOR + t for t in texts)])
    k = len(anchor)
    for i, ids in enumerate(out):
        if ids[:k] == anchor:
            out[i] = ids[k:]
        else:  # the text merged into the anchor: count it alone rather than guess
            out[i] = tokenizer.encode([texts[i]])[0]
    return out


@dataclass(frozen=True)
class PrepSettings:
    min_sentence_tokens: int = 10  # BABILong's min_sentence_len
    keep_newlines: bool = False  # True keeps hard line wraps inside sentences (see sentences.py)


@dataclass(eq=False)
class Background:
    """One corpus split prepared for one tokenizer; the arrays described in the module doc."""

    folder: Path
    tokenizer: Tokenizer
    meta: dict
    text: str = field(repr=False)
    char_starts: np.ndarray = field(repr=False)
    tok_starts: np.ndarray = field(repr=False)
    ids: np.ndarray = field(repr=False)
    book_starts: np.ndarray = field(repr=False)

    @property
    def fingerprint(self) -> str:
        """Names this content: equal fingerprints mean byte-identical backgrounds."""
        return self.meta["key"]

    @property
    def n_sentences(self) -> int:
        return len(self.tok_starts) - 1

    @property
    def n_tokens(self) -> int:
        return int(self.tok_starts[-1])

    @property
    def book_ids(self) -> list[str]:
        return self.meta["book_ids"]

    @property
    def additive(self) -> bool:
        return bool(self.meta["additive"])

    @cached_property
    def anchor_ids(self) -> list[int]:
        return self.tokenizer.encode([ANCHOR])[0]

    def sentence_text(self, i: int) -> str:
        return self.text[self.char_starts[i]:self.char_starts[i + 1]]

    def sentence_ids(self, i: int) -> np.ndarray:
        return self.ids[self.tok_starts[i]:self.tok_starts[i + 1]]

    def book_of(self, sentence: int) -> str:
        return self.book_ids[int(np.searchsorted(self.book_starts, sentence, side="right")) - 1]

    def random_start(self, rng: np.random.Generator) -> int:
        """A random book, then a random sentence in it (BABILong: random book, random offset)."""
        book = int(rng.integers(len(self.book_ids)))
        lo, hi = int(self.book_starts[book]), int(self.book_starts[book + 1])
        return int(rng.integers(lo, hi))


def prep_key(corpus_hash: str, tokenizer: Tokenizer, settings: PrepSettings) -> str:
    fields = {"format": PREP_VERSION, "corpus": corpus_hash, "tokenizer": tokenizer.fingerprint,
              "splitter": SPLITTER_VERSION, "anchor": ANCHOR,
              "min_sentence_tokens": settings.min_sentence_tokens,
              "keep_newlines": settings.keep_newlines}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def prepare_background(corpus: str | Corpus = "gutenberg", tokenizer: str | Tokenizer = "gpt2",
                       *, split: str = "test", min_sentence_tokens: int = 10,
                       keep_newlines: bool = False, cache_dir: str | Path | None = None,
                       progress: bool = False) -> Background:
    """The prepared background for (corpus, split, tokenizer), built on first use, then cached.

    >>> bg = prepare_background("gutenberg", "gpt2", split="test")  # doctest: +SKIP
    >>> bg.n_tokens, bg.meta["additive"]                          # doctest: +SKIP
    (289417, True)
    """
    if min_sentence_tokens < 1:
        raise CorpusError(f"min_sentence_tokens must be >= 1, got {min_sentence_tokens}")
    settings = PrepSettings(min_sentence_tokens, keep_newlines)
    corp = open_corpus(corpus, split, cache_dir)
    tok = load_tokenizer(tokenizer, cache_dir)
    t0 = time.perf_counter()
    corpus_hash = corp.content_hash()
    key = prep_key(corpus_hash, tok, settings)
    folder = cache_root(cache_dir) / "haystack" / key[:32]
    if not (folder / "meta.json").is_file():
        with publish_dir(folder) as tmp:
            _build(corp, tok, settings, tmp, progress)
            meta = json.loads((tmp / "meta.json").read_text())
            meta.update(key=key, corpus_hash=corpus_hash,
                        prep_s=round(time.perf_counter() - t0, 3))
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
    return load_background(folder, tok)


def load_background(folder: Path, tokenizer: Tokenizer) -> Background:
    meta = json.loads((folder / "meta.json").read_text())
    if meta.get("format") != PREP_VERSION:
        raise CorpusError(f"{folder}: prepared with format {meta.get('format')}, "
                          f"this babilab reads {PREP_VERSION}; delete the folder to rebuild")
    if meta["tokenizer_fingerprint"] != tokenizer.fingerprint:
        raise CorpusError(f"{folder}: prepared for another tokenizer ({meta['tokenizer']})")
    return Background(
        folder=folder, tokenizer=tokenizer, meta=meta,
        # bytes, then decode: no newline translation can shift character offsets
        text=(folder / "stream.txt").read_bytes().decode("utf-8"),
        char_starts=np.load(folder / "char_starts.npy"),
        tok_starts=np.load(folder / "tok_starts.npy"),
        ids=np.load(folder / "ids.npy", mmap_mode="r"),
        book_starts=np.load(folder / "book_starts.npy"),
    )


def _build(corp: Corpus, tok: Tokenizer, settings: PrepSettings, out: Path,
           progress: bool) -> None:
    from tqdm import tqdm  # here: 20 ms of start-up that a cached background never needs

    t_split = t_tok = 0.0
    texts: list[str] = []  # kept sentences, each with its leading space
    id_parts: list[np.ndarray] = []
    counts: list[int] = []
    book_ids: list[str] = []
    book_starts = [0]
    n_dropped = 0
    bar = tqdm(desc=f"preparing {corp.name} ({corp.split}) for {tok.name}", unit=" sentences",
               disable=not progress)
    for doc in corp.documents():
        t = time.perf_counter()
        sentences = [" " + s for s in split_sentences(doc.text, settings.keep_newlines)]
        t_split += time.perf_counter() - t
        kept_before = len(texts)
        for b in range(0, len(sentences), _BATCH):
            batch = sentences[b:b + _BATCH]
            t = time.perf_counter()
            encoded = encode_in_context(tok, batch)
            t_tok += time.perf_counter() - t
            for s, ids in zip(batch, encoded, strict=True):
                if len(ids) < settings.min_sentence_tokens:
                    n_dropped += 1
                    continue
                texts.append(s)
                counts.append(len(ids))
                id_parts.append(np.asarray(ids, dtype=np.uint32))
            bar.update(len(batch))
        if len(texts) > kept_before:  # a book with no kept sentence is left out entirely
            book_ids.append(doc.book_id)
            book_starts.append(len(texts))
    bar.close()
    if not texts:
        raise CorpusError(f"{corp.name} ({corp.split}): no usable text (no sentence of at "
                          f"least {settings.min_sentence_tokens} tokens)")

    tok_starts = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(counts, out=tok_starts[1:])
    char_starts = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum([len(s) for s in texts], out=char_starts[1:])
    ids = np.concatenate(id_parts)
    text = "".join(texts)
    del id_parts

    t = time.perf_counter()
    bad_windows = _check_additive(tok, text, char_starts, tok_starts, ids)
    t_check = time.perf_counter() - t

    (out / "stream.txt").write_bytes(text.encode("utf-8"))
    np.save(out / "char_starts.npy", char_starts)
    np.save(out / "tok_starts.npy", tok_starts)
    np.save(out / "ids.npy", ids)
    np.save(out / "book_starts.npy", np.asarray(book_starts, dtype=np.int64))
    meta = {
        "format": PREP_VERSION, "corpus": corp.name, "split": corp.split,
        "disjoint_splits": corp.disjoint_splits, "tokenizer": tok.name,
        "tokenizer_fingerprint": tok.fingerprint, "splitter": SPLITTER_VERSION,
        "min_sentence_tokens": settings.min_sentence_tokens,
        "keep_newlines": settings.keep_newlines, "book_ids": book_ids,
        "n_books": len(book_ids), "n_sentences": len(texts), "n_tokens": int(tok_starts[-1]),
        "n_chars": len(text), "n_dropped_short": n_dropped,
        "additive": bad_windows == 0, "non_additive_windows": bad_windows,
        "split_s": round(t_split, 3), "tokenize_s": round(t_tok, 3),
        "check_s": round(t_check, 3),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))


def _check_additive(tok: Tokenizer, text: str, char_starts: np.ndarray, tok_starts: np.ndarray,
                    ids: np.ndarray) -> int:
    """How many windows of the stream do not encode to their sentences' concatenated ids.

    Windows are _CHECK_WINDOW sentences long and overlap by one sentence, so every join
    between neighbours lies inside a window; one extra window holds the wrap-around join.
    """
    n = len(tok_starts) - 1
    spans = [(a, min(a + _CHECK_WINDOW + 1, n)) for a in range(0, max(n - 1, 1), _CHECK_WINDOW)]
    bad = 0
    for b in range(0, len(spans), _BATCH // _CHECK_WINDOW):
        chunk = spans[b:b + _BATCH // _CHECK_WINDOW]
        got = encode_in_context(tok, [text[char_starts[lo]:char_starts[hi]] for lo, hi in chunk])
        for (lo, hi), g in zip(chunk, got, strict=True):
            bad += not np.array_equal(np.asarray(g, dtype=np.uint32),
                                      ids[tok_starts[lo]:tok_starts[hi]])
    if n > 1:  # last sentence followed by the first: the join a wrapping background makes
        wrap = text[char_starts[n - 1]:] + text[:char_starts[1]]
        want = np.concatenate([ids[tok_starts[n - 1]:], ids[:tok_starts[1]]])
        bad += not np.array_equal(np.asarray(encode_in_context(tok, [wrap])[0], np.uint32), want)
    return bad


__all__ = ["ANCHOR", "PREP_VERSION", "Background", "PrepSettings", "encode_in_context",
           "load_background", "prep_key", "prepare_background"]
