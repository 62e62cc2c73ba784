"""The `rag` answerer: retrieve the top-k chunks of the context, then let another answerer read them.

    load_answerer("rag:hf:smollm2")                                  # sentences, k=5, similarity order
    load_answerer("rag:hf:smollm2", chunk="tokens:512", order="doc", max_new_tokens=20)
    RagAnswerer(OracleAnswerer(), k=3)                               # any answerer object as reader
    babilab eval --model rag:hf:smollm2 --rag-chunk tokens:512 --rag-k 5 --rag-order doc ...

BABILong's second baseline (arXiv 2406.10149): split the haystack into chunks
(sentences, or 512-token pieces), embed them, retrieve the top-5 by similarity to the
question, and give only those to a reader. It stays flat around 50-60% on qa1 at any length
and fails multi-fact tasks. This answerer reproduces it and measures why:

- Retrieval: `rag_chunks.py` (chunkers) and `rag_index.py` (embedder, embedding cache, FAISS
  search).
- Order: `order="similarity"` gives the reader the chunks best first, as the reference
  does; `order="doc"` puts them back in document order, so facts reach the reader in story
  order (the fix for qa2/qa3, whose answers depend on which fact came last).
- The reader's context is the retrieved chunk texts joined with a blank line ("\\n\\n"),
  as the reference joins them. Its request also carries the facts that lie whole inside
  the retrieved chunks, in the order the reader sees them, with offsets into the new
  context: the `oracle` reader then answers from exactly what retrieval found.
- Recall (in `Answer.extra`, from the suite's fact positions): a supporting fact counts as
  retrieved when one retrieved chunk's span holds [offset, offset + len(fact)) whole.
  `recall_all` is 1.0 when every supporting fact was retrieved, else 0.0; `recall_fraction`
  is the share retrieved; `facts_split` counts facts (supporting or not) that no chunk holds
  whole (always 0 for sentence chunks; tokens:N cuts some). Requests without fact positions
  (official sets) get no recall keys.

Reader options: the options `babilab eval` passes to any model (`max_new_tokens`, `dtype`,
`truncate`, `base_url`, `mode`, plus `batch_size` and `threads`) go to the reader when given;
anything else goes in `reader_options={...}`.

Owns retrieval-then-read and its measurements. Does not own chunking or search internals
(rag_chunks.py, rag_index.py), the prompt (prompts.py), nor scoring.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..errors import BabilabError
from ..prompts import PromptConfig
from .base import (
    Answer,
    Answerer,
    Request,
    check_options,
    fingerprint_of,
    load_answerer,
    register,
)
from .rag_index import (
    DEFAULT_EMBEDDER,
    INDEX_KINDS,
    Chunker,
    Chunks,
    Embedder,
    chunk_and_embed,
    search,
)

RAG_VERSION = "1"  # bump when the reader's context changes for the same retrieval
JOIN = "\n\n"  # between retrieved chunks in the reader's context (the reference's join)
ORDERS = {"similarity": "sim", "doc": "doc"}  # order -> label part


@dataclass(frozen=True)
class Retrieval:
    """What retrieval made of one request: the reader's request and the measurements."""

    request: Request  # for the reader: retrieved chunks as context, the facts inside them
    chunk_ids: tuple[int, ...]  # in the order given to the reader
    extra: dict
    elapsed_s: float


def recall_of(request: Request, chunks: Chunks, retrieved: list[int]) -> dict:
    """Recall of the supporting facts by the retrieved chunks, and facts cut by chunking.

    >>> import numpy as np
    >>> chunks = Chunks(np.array([0, 10]), np.array([9, 20]), normalized=False)
    >>> r = Request("x", "qa2", "A b c d e. F g h i j.", "?", ("A b c", "F g h"), (0, 1), (0, 11))
    >>> recall_of(r, chunks, [1])
    {'recall_all': 0.0, 'recall_fraction': 0.5, 'supporting_retrieved': 1, 'supporting': 2, 'facts_split': 0}
    """
    if not request.facts or len(request.fact_char_offsets) != len(request.facts):
        return {}
    holder = [chunks.containing(o, o + len(f))
              for f, o in zip(request.facts, request.fact_char_offsets, strict=True)]
    chosen = set(retrieved)
    found = sum(holder[i] in chosen for i in request.supporting if holder[i] >= 0)
    n = len(request.supporting)
    return {"recall_all": float(found == n), "recall_fraction": found / n if n else 1.0,
            "supporting_retrieved": found, "supporting": n,
            "facts_split": sum(h < 0 for h in holder)}


def reader_request(request: Request, context: str, chunks: Chunks, ids: list[int]) -> Request:
    """The request the reader sees: the chunks joined, with the facts they hold re-located."""
    texts = [chunks.text(context, i) for i in ids]
    base, pos = [], 0  # where each chunk starts in the joined text
    for t in texts:
        base.append(pos)
        pos += len(t) + len(JOIN)
    placed = []  # (offset in the new context, fact index)
    for f, (fact, offset) in enumerate(zip(request.facts, request.fact_char_offsets, strict=False)):
        holder = chunks.containing(offset, offset + len(fact))
        if holder < 0 or holder not in ids:
            continue
        slot = ids.index(holder)
        rel = offset - int(chunks.starts[holder])
        if texts[slot][rel:rel + len(fact)] != fact:  # sentence text had its whitespace collapsed
            rel = texts[slot].find(fact)
        placed.append((base[slot] + rel, f))
    placed.sort()
    keep = [f for _, f in placed]
    supporting = tuple(keep.index(i) for i in request.supporting if i in keep)
    return Request(request.sample_id, request.task, JOIN.join(texts), request.question,
                   tuple(request.facts[f] for f in keep), supporting, tuple(o for o, _ in placed))


READER_OPTIONS = ("max_new_tokens", "dtype", "truncate", "base_url", "mode", "batch_size", "threads")


def reader_options_of(options: dict) -> dict:
    """What goes to the reader: the shared options that are set, then `reader_options`."""
    passed = {k: v for k, v in options.items() if k in READER_OPTIONS and v is not None}
    return {**passed, **(options.get("reader_options") or {})}


@register("rag")
class RagAnswerer(Answerer):
    def __init__(self, reader: str | Answerer, chunk: str = "sentence", k: int = 5,
                 order: str = "similarity", embedder: str | Embedder | None = None, index: str = "flat",
                 cache: bool = True, progress: bool | None = None,
                 reader_options: dict | None = None, max_new_tokens: int | None = None,
                 dtype: str | None = None, truncate: str | None = None, base_url: str | None = None,
                 mode: str | None = None, batch_size: int | None = None, threads: int | None = None):
        # Cheap checks first: a typo should not cost a model load.
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise BabilabError(f"rag k must be an integer >= 1, got {k!r}")
        if order not in ORDERS:
            raise BabilabError(f"rag order must be 'similarity' or 'doc', got {order!r}")
        if index not in INDEX_KINDS:
            raise BabilabError(f"rag index must be one of {', '.join(INDEX_KINDS)}, got {index!r}")
        self.chunker = Chunker.parse(chunk)
        self.k, self.order, self.index = k, order, index
        self.cache, self.progress = cache, progress
        # an Embedder object may be shared by several answerers (it holds no chunk settings)
        self.embedder = embedder if isinstance(embedder, Embedder) else Embedder.load(embedder)
        self.embedder.seq_length(self.chunker)  # a chunk the embedder cannot read fails here

        options = reader_options_of({
            "max_new_tokens": max_new_tokens, "dtype": dtype, "truncate": truncate,
            "base_url": base_url, "mode": mode, "batch_size": batch_size, "threads": threads,
            "reader_options": reader_options})
        if isinstance(reader, Answerer):
            if options:
                raise BabilabError("reader options apply only when the reader is given by name")
            self.reader, self.owns_reader = reader, False
        else:
            if not reader:
                raise BabilabError("rag needs a reader: rag:hf:smollm2, rag:oracle, rag:openai:MODEL")
            if reader.split(":", 1)[0].strip().lower() == "rag":
                raise BabilabError("a rag reader cannot itself be rag")
            self.reader, self.owns_reader = load_answerer(reader, **options), True
        self._check_window()

    def _check_window(self) -> None:
        """k chunks of N tokens must fit the reader's window (tokens of the embedder: approximate)."""
        window = getattr(self.reader, "window", None)
        if self.chunker.kind != "tokens" or not window:
            return
        need = self.k * self.chunker.size
        if need >= window:
            self.close()
            raise BabilabError(f"{self.k} chunks of {self.chunker.size} tokens ({need} tokens) do not "
                               f"fit the reader {self.reader.label}'s {window}-token window; lower "
                               "--rag-k or the chunk size")

    @classmethod
    def from_spec(cls, arg: str, **options) -> RagAnswerer:
        return cls(arg, **options)

    @classmethod
    def check_spec(cls, arg: str, options: dict) -> None:
        """The options passed on must be ones the reader takes: checked before the embedder loads."""
        if arg and arg.split(":", 1)[0].strip().lower() != "rag":
            try:
                check_options(arg, reader_options_of(options))
            except BabilabError as e:
                raise BabilabError(f"rag reader: {e}") from None

    @property
    def label(self) -> str:
        """`rag-sent-k5-sim+smollm2`: every setting that can differ within one run folder."""
        chunk = "sent" if self.chunker.kind == "sentence" else f"tok{self.chunker.size}"
        parts = ["rag", chunk, f"k{self.k}", ORDERS[self.order]]
        if self.index != "flat":
            parts.append(self.index)
        if self.embedder.name != DEFAULT_EMBEDDER:
            parts.append(self.embedder.name)
        return "-".join(parts) + "+" + self.reader.label

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(backend="rag", version=RAG_VERSION, reader=self.reader.fingerprint,
                              embedder=self.embedder.content_hash,
                              embedder_seq=self.embedder.seq_length(self.chunker),
                              chunk=self.chunker.spec,
                              chunker=self.chunker.version, k=self.k, order=self.order,
                              index=self.index, join=JOIN)

    def retrieve(self, request: Request) -> Retrieval:
        """Chunk, embed (or load from the cache), search, order; no reading."""
        began = time.perf_counter()
        context = request.context
        chunks, vectors = chunk_and_embed(self.embedder, self.chunker, context, self.cache,
                                          self.progress)
        ids, scores = search(vectors, self.embedder.encode([request.question]), self.k, self.index)
        if self.order == "doc":
            ids = sorted(ids)
        extra = {"chunk": self.chunker.spec, "k": self.k, "order": self.order,
                 "n_chunks": len(chunks), **recall_of(request, chunks, ids),
                 "retrieved": [[int(chunks.starts[i]), int(chunks.ends[i])] for i in ids],
                 "scores": [round(s, 4) for s in scores]}  # best first, whatever the order
        return Retrieval(reader_request(request, context, chunks, ids), tuple(ids), extra,
                         time.perf_counter() - began)

    def answer(self, requests: list[Request], config: PromptConfig) -> list[Answer]:
        retrievals = [self.retrieve(r) for r in requests]
        # one reader call for the whole batch, so a batching reader (hf) batches
        answers = self.reader.answer([r.request for r in retrievals], config)
        if len(answers) != len(requests):
            raise RuntimeError(f"{self.reader.label} returned {len(answers)} answers for "
                               f"{len(requests)} requests")
        out = []
        for got, r in zip(answers, retrievals, strict=True):
            extra = {**(got.extra or {}), **r.extra, "retrieve_s": round(r.elapsed_s, 4)}
            out.append(Answer(got.output, elapsed_s=got.elapsed_s + r.elapsed_s,
                              prompt_tokens=got.prompt_tokens, over_window=got.over_window,
                              truncated=got.truncated, error=got.error, extra=extra))
        return out

    def close(self) -> None:
        if self.owns_reader:
            self.reader.close()
