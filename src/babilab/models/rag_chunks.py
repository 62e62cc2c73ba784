"""Chunkers: a context cut into character spans, the units the `rag` answerer retrieves.

    chunker = Chunker.parse("sentence")                     # or "tokens:512"
    chunks = chunker.split(context, embedder.tokenizer)     # character spans, in document order
    chunks.text(context, i), chunks.containing(start, end)  # chunk i's text; the chunk holding a span

Chunkers:
  sentence    babilab's own sentence splitter (`haystack.split_sentences`), the one the haystack
              was built with, so a fact is never cut: at worst it shares its chunk with
              background text (a cut sentence without final punctuation before it, or a
              sentence starting in lower case after it).
              The chunk text is the sentence with its whitespace collapsed, as the splitter
              returns it; its span is where it lies in the context.
  tokens:N    consecutive runs of N tokens of the *embedder's* tokenizer (what the retriever
              sees), cut wherever the N-th token ends, so a fact may be split in two; the
              answerer counts those. The chunk text is the exact slice of the context.

Owns the cutting only: embedding, the cache and search are rag_index.py's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..errors import BabilabError
from ..haystack.sentences import SPLITTER_VERSION, split_sentences

_TEXT_BLOCK = 1 << 20  # characters tokenised at once by the tokens:N chunker
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Chunks:
    """Non-overlapping character spans of a context, in document order."""

    starts: np.ndarray  # (N,) int64, context[starts[i]:ends[i]] is chunk i
    ends: np.ndarray  # (N,) int64, exclusive
    normalized: bool  # chunk text is the span with whitespace collapsed (sentence chunks)

    def __len__(self) -> int:
        return len(self.starts)

    def text(self, context: str, i: int) -> str:
        span = context[int(self.starts[i]):int(self.ends[i])]
        return " ".join(span.split()) if self.normalized else span

    def containing(self, start: int, end: int) -> int:
        """Index of the chunk whose span holds [start, end) whole, or -1 (split or not covered)."""
        i = int(np.searchsorted(self.starts, start, side="right")) - 1
        return i if i >= 0 and self.ends[i] >= end else -1


@dataclass(frozen=True)
class Chunker:
    kind: str  # "sentence" | "tokens"
    size: int = 0  # tokens per chunk, for "tokens"

    @classmethod
    def parse(cls, spec: str) -> Chunker:
        """`"sentence"` or `"tokens:N"` (N >= 1) -> a Chunker; anything else is an error."""
        spec = spec.strip().lower()
        if spec in ("sentence", "sentences"):
            return cls("sentence")
        m = re.fullmatch(r"tokens?:(\d+)", spec)
        if m and int(m.group(1)) >= 1:
            return cls("tokens", int(m.group(1)))
        raise BabilabError(f"bad chunker {spec!r}: use 'sentence' or 'tokens:N' with N >= 1, "
                           "e.g. tokens:512")

    @property
    def spec(self) -> str:
        return "sentence" if self.kind == "sentence" else f"tokens:{self.size}"

    @property
    def version(self) -> str:
        """What, besides the spec, decides the chunks (the splitter's rules)."""
        return f"splitter-{SPLITTER_VERSION}" if self.kind == "sentence" else "offsets-1"

    def split(self, context: str, tokenizer=None) -> Chunks:
        if self.kind == "sentence":
            return sentence_chunks(context)
        if tokenizer is None:
            raise BabilabError("tokens:N chunks need a tokenizer (the embedder's)")
        return token_chunks(context, tokenizer, self.size)


def sentence_chunks(context: str) -> Chunks:
    """One chunk per sentence of `split_sentences(context)`, with its span in `context`.

    >>> c = sentence_chunks("It rained.  Mary went\\nhome. Then?")
    >>> [(int(a), int(b)) for a, b in zip(c.starts, c.ends)], c.text("It rained.  Mary went\\nhome. Then?", 1)
    ([(0, 10), (12, 27), (28, 33)], 'Mary went home.')
    """
    sentences = split_sentences(context)
    starts = np.empty(len(sentences), dtype=np.int64)
    ends = np.empty(len(sentences), dtype=np.int64)
    # The splitter only drops whitespace, so the sentences' words are context.split() in order.
    # Fast path: a sentence whose span holds single spaces only is found by one slice compare.
    pos = 0
    for i, s in enumerate(sentences):
        m = _WORD.search(context, pos)
        start = m.start()
        if context.startswith(s, start):
            end = start + len(s)
        else:  # line breaks or runs of spaces inside: walk its words
            words = _WORD.finditer(context, start)
            for _ in range(len(s.split())):
                end = next(words).end()
        starts[i], ends[i] = start, end
        pos = end
    return Chunks(starts, ends, normalized=True)


def token_chunks(context: str, tokenizer, size: int) -> Chunks:
    """Runs of `size` tokens (the last one shorter), as character spans.

    Tokenised in ~1 MB blocks cut at whitespace, so memory stays bounded for 10M-token
    contexts. `tokenizer` is an HF fast tokenizer (offsets come from its backend).
    """
    # A copy without truncation or padding: the embedder's own tokenizer stops at its window.
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_truncation()
    backend.no_padding()
    starts: list[np.ndarray] = []  # per block: the starts of its whole chunks
    ends: list[np.ndarray] = []
    carry = np.zeros((0, 2), dtype=np.int64)  # token spans not yet grouped into a chunk
    pos = 0
    while pos < len(context):
        stop = min(len(context), pos + _TEXT_BLOCK)
        if stop < len(context):  # cut after whitespace so no word straddles two blocks
            cut = max(context.rfind(" ", pos, stop), context.rfind("\n", pos, stop))
            stop = cut + 1 if cut > pos else stop
        spans = np.array(backend.encode(context[pos:stop], add_special_tokens=False).offsets,
                         dtype=np.int64).reshape(-1, 2) + pos  # (T, 2) character spans
        spans = np.concatenate([carry, spans[spans[:, 1] > spans[:, 0]]])  # drop zero-width tokens
        whole = len(spans) // size * size
        starts.append(spans[:whole:size, 0])
        ends.append(spans[size - 1:whole:size, 1])
        carry = spans[whole:]
        pos = stop
    if len(carry):
        starts.append(carry[:1, 0])
        ends.append(carry[-1:, 1])
    if not starts:
        return Chunks(np.zeros(0, np.int64), np.zeros(0, np.int64), normalized=False)
    return Chunks(np.concatenate(starts), np.concatenate(ends), normalized=False)


__all__ = ["Chunker", "Chunks", "sentence_chunks", "token_chunks"]
